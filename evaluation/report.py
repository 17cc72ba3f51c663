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
from evaluation.html_report import write_html_report
from evaluation.references import load_paper_numbers
from evaluation.selection import select_runs, selection_lines
from evaluation.tables import display_table, summarise, table_notes, write_tables
from evaluation.tensorboard import write_event_files

log = logging.getLogger(__name__)


def write_report(manifest_name: str, records: list[dict], out_dir: Path,
                 group_by: list[str] | None = None, *, results_root: Path | None = None,
                 missing: list[str] = (), include_unhealthy: bool = False) -> list[Path]:
    """Tables, every figure the records allow, report.md and report.html listing both and why any figure was
    skipped, and TensorBoard event files (evaluation/tensorboard.py; training curves from
    results_root/<experiment>/<run_id>/metrics.jsonl when results_root is given). `missing`: the study's
    run ids that have no record yet, listed in report.html's runs. Runs that did not learn (evaluation/health.py) are
    named with the checks they failed, and left out of means and fits unless `include_unhealthy`."""
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
    lines += ["", "## Label-free model selection (paper Eq. 8)", "", *selection_lines(select_runs(records))]
    lines += ["", "## Health", "", *health_lines(records, include_unhealthy)]
    index.write_text("\n".join(lines) + "\n")
    for name, why in skipped.items():
        log.info("figure %s skipped: %s", name, why)
    events, not_written = _event_files(records, out_dir, results_root)
    paper_numbers = load_paper_numbers()
    summary, keys = summarise(records, group_by, paper_numbers, include_unhealthy)
    page = write_html_report(
        manifest_name, out_dir, table=display_table(summary, keys), table_notes=table_notes(paper_numbers, include_unhealthy),
        figures=[(p, captions[p.stem]) for p in figure_paths if p.suffix == ".png"],
        skipped={**skipped, **not_written}, records=records, missing=list(missing),
        files=[*written[:3], *(p for p in figure_paths if p.suffix == ".pdf"), index])
    return [*written, index, page, *events]


def _event_files(records: list[dict], out_dir: Path, results_root: Path | None) -> tuple[list[Path], dict[str, str]]:
    """TensorBoard event files, or why there are none (an environment made before tensorboard was a
    dependency: the rest of the report does not need it)."""
    try:
        return write_event_files(records, out_dir, results_root), {}
    except ImportError as error:
        why = f"TensorBoard event files not written: {error} (rerun ./install.sh, or pip install tensorboard)"
        log.warning(why)
        return [], {"tensorboard": why}


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
    echo("\nLabel-free model selection (paper Eq. 8):\n" + "\n".join(selection_lines(select_runs(records))))
    out_dir = out_dir or Path(results_root) / experiment
    missing = sorted(wanted - {r["run_id"] for r in records})
    for path in write_report(experiment, records, out_dir, results_root=results_root, missing=missing,
                             include_unhealthy=include_unhealthy):
        echo(f"wrote {path}")
    echo(f"open {out_dir / 'report.html'} in a browser; training curves: tensorboard --logdir {out_dir}")
    ignored = len(found) - len(records)
    echo(f"{len(records)} of {len(run_ids)} runs have records"
         + (f"; {ignored} record(s) of runs no longer in the manifest were left out" if ignored else ""))
    return True
