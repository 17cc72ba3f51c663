"""report.html: one self-contained page per study, written by `lejepa report` beside table.md.

The page holds what the report's files hold, in one place a browser opens: the summary table exactly as
table.md has it (our numbers, the paper's number, gap and protocol where one matches), every figure with its
caption (PNG embedded as a base64 data URI, so the page is one file that can be mailed or archived), the
figures that were skipped and why, and one line per run with its status. No script, no external resource.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from evaluation.accuracies import KNN, LINEAR, probe_accuracy
from evaluation.tables import format_duration

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f2f2f2; } td.text, th.text { text-align: left; }
tr.failed td, tr.diverged td { background: #fdecea; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; max-width: 900px; } .note { color: #555; font-size: 0.9em; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""


def _cell(value: str, numeric: bool) -> str:
    return f"<td>{html.escape(value)}</td>" if numeric else f'<td class="text">{html.escape(value)}</td>'


def _looks_numeric(value: str) -> bool:
    head = value.lstrip("+-~<>= ")
    return bool(head) and (head[0].isdigit() or value == "-")


def html_table(header: list[str], cells: list[list[str]], row_classes: list[str] | None = None) -> str:
    """A table whose columns of numbers are right-aligned and the rest left-aligned."""
    numeric = [bool(cells) and all(_looks_numeric(row[i]) for row in cells) for i in range(len(header))]
    head = "".join(f'<th{"" if numeric[i] else " class=text"}>{html.escape(h)}</th>' for i, h in enumerate(header))
    rows = []
    for index, row in enumerate(cells):
        css = f' class="{row_classes[index]}"' if row_classes else ""
        rows.append(f"<tr{css}>" + "".join(_cell(v, numeric[i]) for i, v in enumerate(row)) + "</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _percent(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{100 * value:.2f}"
    return "-"


def run_rows(records: list[dict], missing: list[str] = ()) -> tuple[list[str], list[list[str]], list[str]]:
    """One row per run: its status and headline numbers, or why it has none; runs without a record last."""
    header = ["run_id", "method", "status", "linear top-1 (%)", "kNN@20 top-1 (%)", "pretrain time",
              "steps", "note"]
    cells, classes = [], []
    for record in sorted(records, key=lambda r: r["run_id"]):
        pretrain = record.get("pretrain") or {}
        wall = pretrain.get("wall_seconds")
        cells.append([record["run_id"], record["spec"]["method"]["name"], record["status"],
                      _percent(probe_accuracy(record, LINEAR)), _percent(probe_accuracy(record, KNN)),
                      format_duration(wall) if isinstance(wall, (int, float)) else "-",
                      str(pretrain.get("steps", "-")), record.get("reason") or ""])
        classes.append(record["status"])
    for run_id in sorted(missing):
        cells.append([run_id, run_id.split("-")[0], "no record", "-", "-", "-", "-",
                      "not run yet, or still running (`lejepa status` says which)"])
        classes.append("missing")
    return header, cells, classes


def write_html_report(manifest_name: str, out_dir: Path, *, table: tuple[list[str], list[list[str]]],
                      table_notes: str, figures: list[tuple[Path, str]], skipped: dict[str, str],
                      records: list[dict], missing: list[str] = (), files: list[Path] = ()) -> Path:
    """Write out_dir/report.html. `table` is table.md's (header, cells); `figures` the PNG files with their
    captions; `missing` the run ids of the study that have no record; `files` the report's other files,
    linked by their path relative to out_dir."""
    out_dir = Path(out_dir)
    title = f"Report: {manifest_name}"
    done = sum(r["status"] == "done" for r in records)
    parts = [f"<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n<title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style>\n</head>\n<body>", f"<h1>{html.escape(title)}</h1>",
             f'<p class=note>{len(records)} record(s), {done} done'
             + (f", {len(missing)} run(s) without a record" if missing else "")
             + f". Training curves and probe numbers: <code>tensorboard --logdir {html.escape(str(out_dir))}</code>."
             "</p>", "<h2>Results</h2>", html_table(*table), f"<p class=note>{html.escape(table_notes)}</p>"]
    parts.append("<h2>Figures</h2>")
    if not figures:
        parts.append("<p>No figure applies to these records (see below).</p>")
    for path, caption in figures:
        parts.append(f'<figure id="{html.escape(path.stem)}"><img src="{png_data_uri(path)}" '
                     f'alt="{html.escape(path.stem)}">\n<figcaption><b>{html.escape(path.stem)}</b>: '
                     f"{html.escape(caption)}</figcaption></figure>")
    if skipped:
        parts.append("<h2>Skipped, and why</h2>\n<ul>")
        parts += [f"<li><b>{html.escape(name)}</b>: {html.escape(why)}</li>" for name, why in skipped.items()]
        parts.append("</ul>")
    header, cells, classes = run_rows(records, missing)
    parts += ["<h2>Runs</h2>", html_table(header, cells, classes)]
    if files:
        parts.append("<h2>Files</h2>\n<ul>")
        parts += [f'<li><a href="{html.escape(str(p.relative_to(out_dir)))}">{html.escape(str(p.relative_to(out_dir)))}'
                  "</a></li>" for p in files]
        parts.append("</ul>")
    parts.append("</body>\n</html>\n")
    path = out_dir / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
