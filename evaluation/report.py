"""`lejepa report`: a study's tables, figures and report.md, from its records only.

Nothing is computed here but summaries of records: figures that need their own computation (the theory
figures, the SIGReg toy) are made by `lejepa figures` (evaluation/paper_figures/).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from evaluation import figures
from evaluation.health import failed_checks, is_unhealthy, study_health
from evaluation.tables import write_tables

log = logging.getLogger(__name__)


def write_report(manifest_name: str, records: list[dict], out_dir: Path,
                 group_by: list[str] | None = None, include_unhealthy: bool = False) -> list[Path]:
    """Tables, every figure the records allow, and report.md listing both, why any figure was skipped, and
    each run that did not learn with the checks it failed."""
    out_dir = Path(out_dir)
    written = write_tables(manifest_name, records, out_dir, group_by, include_unhealthy)
    figure_paths, skipped, captions = figures.write_figures(records, out_dir, include_unhealthy)
    written += figure_paths
    index = out_dir / "report.md"
    lines = [f"# Report: {manifest_name}", "", f"{len(records)} records.", "", "## Tables", ""]
    lines += [f"- [{p.name}]({p.relative_to(out_dir)})" for p in written[:3]]
    lines += ["", "## Figures", ""]
    lines += [f"- [{p.stem}]({p.relative_to(out_dir)}): {captions[p.stem]}" for p in figure_paths
              if p.suffix == ".png"]
    if skipped:
        lines += ["", "## Skipped figures", ""] + [f"- {name}: {why}" for name, why in skipped.items()]
    lines += ["", "## Health", "", *health_lines(records, include_unhealthy)]
    index.write_text("\n".join(lines) + "\n")
    for name, why in skipped.items():
        log.info("figure %s skipped: %s", name, why)
    return [*written, index]


def health_lines(records: list[dict], include_unhealthy: bool = False) -> list[str]:
    """report.md's health section: what was checked, and each run that did not learn with its failed checks."""
    verdicts = study_health(records)
    counts = Counter(health["verdict"] for health in verdicts.values())
    lines = [f"{len(verdicts)} done runs: " + ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
             + ". Checks and thresholds: evaluation/health.py; probe_gap_to_random_init uses labels, the others "
             "do not. Runs that did not learn are " + ("in the tables' means and the figures (asked for)."
             if include_unhealthy else "left out of the tables' means and the figures' fits (--include-unhealthy keeps them).")]
    failing = [(run_id, health) for run_id, health in verdicts.items() if is_unhealthy(health)]
    lines += [""] + [f"- {run_id}: did not learn: {failed_checks(health)}" for run_id, health in failing] if failing else []
    return lines


def report_study(experiment: str, run_ids: list[str], results_root: Path, out_dir: Path | None = None,
                 echo=print, include_unhealthy: bool = False) -> bool:
    """`lejepa report`: the console table and every report file for the runs `run_ids` of an experiment.
    Unusable record files are named and left out; False when there is no record to report."""
    from evaluation.record import read_records
    from evaluation.tables import format_console_table

    found, problems = read_records(results_root, experiment)
    for problem in problems:
        echo(f"left out: {problem}")
    wanted = set(run_ids)
    records = [r for r in found if r["run_id"] in wanted]
    if not records:
        return False
    echo(format_console_table(records, include_unhealthy))
    for line in health_lines(records, include_unhealthy):
        if line.startswith("- "):
            echo(line[2:])
    for path in write_report(experiment, records, out_dir or Path(results_root) / experiment,
                             include_unhealthy=include_unhealthy):
        echo(f"wrote {path}")
    ignored = len(found) - len(records)
    echo(f"{len(records)} of {len(run_ids)} runs have records"
         + (f"; {ignored} record(s) of runs no longer in the manifest were left out" if ignored else ""))
    return True
