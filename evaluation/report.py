"""`lejepa report`: a study's tables, figures and report.md, from its records only.

Nothing is computed here but summaries of records: figures that need their own computation (the theory
figures, the SIGReg toy) are made by `lejepa figures` (evaluation/paper_figures/).
"""

from __future__ import annotations

import logging
from pathlib import Path

from evaluation import figures
from evaluation.selection import select_runs, selection_lines
from evaluation.tables import write_tables

log = logging.getLogger(__name__)


def write_report(manifest_name: str, records: list[dict], out_dir: Path,
                 group_by: list[str] | None = None) -> list[Path]:
    """Tables, every figure the records allow, and report.md listing both and why any figure was skipped."""
    out_dir = Path(out_dir)
    written = write_tables(manifest_name, records, out_dir, group_by)
    figure_paths, skipped, captions = figures.write_figures(records, out_dir)
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
    index.write_text("\n".join(lines) + "\n")
    for name, why in skipped.items():
        log.info("figure %s skipped: %s", name, why)
    return [*written, index]


def report_study(experiment: str, run_ids: list[str], results_root: Path, out_dir: Path | None = None,
                 echo=print) -> bool:
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
    echo(format_console_table(records))
    echo("\nLabel-free model selection (paper Eq. 8):\n" + "\n".join(selection_lines(select_runs(records))))
    for path in write_report(experiment, records, out_dir or Path(results_root) / experiment):
        echo(f"wrote {path}")
    ignored = len(found) - len(records)
    echo(f"{len(records)} of {len(run_ids)} runs have records"
         + (f"; {ignored} record(s) of runs no longer in the manifest were left out" if ignored else ""))
    return True
