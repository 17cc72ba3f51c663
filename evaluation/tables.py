"""Report tables from result records: results/<exp>/table.{csv,md,tex} and the console table.

Runs are grouped (default: dataset x method x arch, plus every spec key that varies inside such a group, so
a mean is always a mean over seeds and never over hyper-parameters), and each group gets the mean, sample
standard deviation (ddof 1) and count of its finished runs, its status counts, and, where the paper or a
public benchmark reports a number for the same dataset, method, architecture and protocol, that number and
our gap to it (evaluation/references.py). Accuracies in records are fractions; tables show percentages,
gaps in percentage points.

Every group shows its runs' health (evaluation/health.py). A run that did not learn is left out of its
group's means and n unless the report is asked to include it (`include_unhealthy`), and the health column
says how many there were and whether they are in the mean.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evaluation.health import DID_NOT_LEARN, NOT_CHECKED, OK, REFERENCE, study_health
from evaluation.record import STATUSES
from evaluation.references import load_paper_numbers, match_reference, protocol_label, reference_text
from evaluation.rows import MISSING, describe, display_name, group_keys, hashable, sort_key


@dataclass(frozen=True)
class Metric:
    column: str  # name in the summary (CSV) and in paper matching
    path: str  # dotted path in a flattened record
    label: str
    percent: bool = True  # a fraction in the record, a percentage in the table


REQUIRED_METRICS = (
    Metric("linear_top1", "evaluation.linear_top1", "linear top-1 (%)"),
    Metric("linear_top5", "evaluation.linear_top5", "linear top-5 (%)"),
    Metric("knn_top1@20", "evaluation.knn_top1@20", "kNN@20 top-1 (%)"),
)
OPTIONAL_METRICS = tuple(
    Metric(f"knn_top1@{k}", f"evaluation.knn_top1@{k}", f"kNN@{k} top-1 (%)") for k in (10, 100, 200)
)
RUN_METRICS = (
    Metric("pretrain_wall_s", "pretrain.wall_seconds", "pretrain time", percent=False),
    Metric("final_loss", "pretrain.final_loss", "final loss", percent=False),
)
# Which summary column a reference protocol is compared with.
PROTOCOL_COLUMNS = {"linear": "linear_top1", "knn": "knn_top1@20"}


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def _present_metrics(rows: list[dict[str, Any]]) -> list[Metric]:
    """Required metrics always; optional ones and few-shot accuracies when some record has them."""
    present = [m for m in OPTIONAL_METRICS if any(row.get(m.path) is not None for row in rows)]
    shots = sorted({int(m.group(1)) for row in rows for key in row
                    if (m := re.fullmatch(r"evaluation\.few_shot\.(\d+)\.mean", key))})
    few_shot = [Metric(f"few_shot_{s}", f"evaluation.few_shot.{s}.mean", f"{s}-shot top-1 (%)") for s in shots]
    return [*REQUIRED_METRICS, *present, *few_shot]


def summarise(records: list[dict], group_by: list[str] | None = None, paper_numbers: dict | None = None,
              include_unhealthy: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """One row per group: keys, n, seeds, health, <metric>_mean/_std (percent), status counts, references.
    Means are over the group's done runs that learnt (all done runs with include_unhealthy).

    Returns the frame and the names of its key columns."""
    health = study_health(records)
    rows = [describe(r) for r in records]
    for row, record in zip(rows, records):
        row["health"] = health.get(record["run_id"], {}).get("verdict")
    keys = group_keys(rows, group_by)
    metrics = [*_present_metrics(rows), *RUN_METRICS]
    entries = (paper_numbers or load_paper_numbers())["entries"]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(hashable(row.get(k)) for k in keys), []).append(row)
    status_columns = [*STATUSES, *sorted({row["status"] for row in rows} - set(STATUSES))]

    table = []
    for key_values in sorted(groups, key=lambda values: tuple(sort_key(v) for v in values)):
        members = groups[key_values]
        finished = [r for r in members if r["status"] == "done"]
        done = [r for r in finished if include_unhealthy or r["health"] != DID_NOT_LEARN]  # what is averaged
        out: dict[str, Any] = {display_name(k): v for k, v in zip(keys, key_values)}
        out["n"] = len(done)
        out["did_not_learn"] = sum(r["health"] == DID_NOT_LEARN for r in finished)
        out["health"] = health_text([r["health"] for r in finished], include_unhealthy)
        out["seeds"] = len({r.get("spec.seed") for r in done})
        for metric in metrics:
            values = [float(r[metric.path]) * (100 if metric.percent else 1)
                      for r in done if _finite(r.get(metric.path))]
            out[f"{metric.column}_mean"], out[f"{metric.column}_std"] = _mean_std(values)
        counts = Counter(r["status"] for r in members)
        for status in status_columns:
            out[status] = counts.get(status, 0)
        out.update(_references(members, out, entries))
        table.append(out)
    summary = pd.DataFrame(table)
    summary.attrs["status_columns"] = status_columns
    return summary, [display_name(k) for k in keys]


def health_text(verdicts: list[str | None], include_unhealthy: bool) -> str:
    """A group's health in a few words: 'ok', 'did not learn: 2 of 3 (not in the mean)', 'reference', ..."""
    if not verdicts:
        return "-"
    failed = verdicts.count(DID_NOT_LEARN)
    if failed:
        where = "in the mean" if include_unhealthy else "not in the mean"
        return f"{DID_NOT_LEARN}: {failed} of {len(verdicts)} ({where})"
    if all(v == REFERENCE for v in verdicts):
        return REFERENCE
    unchecked = sum(v in (None, NOT_CHECKED) for v in verdicts)
    if unchecked == len(verdicts):
        return NOT_CHECKED
    return OK if not unchecked else f"{OK}, {unchecked} {NOT_CHECKED}"


def _only(members: list[dict[str, Any]], key: str) -> Any:
    values = {hashable(m.get(key)) for m in members}
    return values.pop() if len(values) == 1 else None


def _common_settings(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The spec keys every member of a group shares, with their value: what a reference's `config` (a
    Table 7 cell's V and lambda, say) is checked against."""
    keys = {k for m in members for k in m if k.startswith("spec.")}
    return {k: members[0].get(k) for k in keys if len({hashable(m.get(k)) for m in members}) == 1}


def _references(members: list[dict[str, Any]], summary: dict[str, Any], entries: list[dict]) -> dict[str, Any]:
    """Paper/benchmark number, its protocol and our gap per measured column, when the whole group is one
    dataset/method/arch with the settings the reference was measured at."""
    identity = {"dataset": _only(members, "dataset"), "method": _only(members, "method"),
                "arch": _only(members, "arch"), "transfer_from": _only(members, "transfer_from"),
                "epochs": _only(members, "pretrain_epochs"), "config": _common_settings(members)}
    out: dict[str, Any] = {}
    refs = []
    columns = [(protocol, column, None) for protocol, column in PROTOCOL_COLUMNS.items()]
    columns += [("linear", column.removesuffix("_mean"), int(column.split("_")[2]))
                for column in summary if re.fullmatch(r"few_shot_\d+_mean", column)]
    for protocol, column, shots in columns:
        entry = match_reference(entries, protocol=protocol, shots=shots, **identity)
        value = entry["value"] if entry else math.nan
        out[f"paper_{column}"] = value
        out[f"gap_{column}"] = summary[f"{column}_mean"] - value
        out[f"protocol_{column}"] = protocol_label(entry) if entry else None
        if entry:
            refs.append(entry["id"])
    repro = match_reference(entries, protocol="linear", roles=("reproduction",), **identity)
    out["public_repro_linear_top1"] = reference_text(repro) if repro else None
    out["ref"] = ", ".join(refs + ([repro["id"]] if repro else [])) or None
    return out


# ---------------------------------------------------------------- formatting

def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_duration(seconds: float) -> str:
    if not _finite(seconds):
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _mean_pm_std(mean: float, std: float, pm: str, digits: int = 2) -> str:
    if not _finite(mean):
        return "-"
    return f"{mean:.{digits}f}{pm}{std:.{digits}f}" if _finite(std) else f"{mean:.{digits}f}"


def _key_text(value: Any) -> str:
    if value is MISSING or (isinstance(value, float) and math.isnan(value)):  # pandas stores None as NaN
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_key_text(v) for v in value) + "]"
    return str(value)


def _status_text(row: pd.Series, statuses: list[str]) -> str:
    return ", ".join(f"{int(row[s])} {s}" for s in statuses if row[s])


def display_table(summary: pd.DataFrame, keys: list[str], pm: str = " ± ") -> tuple[list[str], list[list[str]]]:
    """Header and text cells of the human-readable table (Markdown and LaTeX share it)."""
    metric_columns = [m for m in (*REQUIRED_METRICS, *OPTIONAL_METRICS) if f"{m.column}_mean" in summary]
    metric_columns += [Metric(c.removesuffix("_mean"), "", f"{c.split('_')[2]}-shot top-1 (%)")
                       for c in summary.columns if re.fullmatch(r"few_shot_\d+_mean", c)]
    optional = {m.column for m in OPTIONAL_METRICS} | {m.column for m in metric_columns if "few_shot" in m.column}
    metric_columns = [m for m in metric_columns
                      if m.column not in optional or summary[f"{m.column}_mean"].notna().any()]
    references = [m.column for m in metric_columns
                  if summary.get(f"paper_{m.column}", pd.Series(dtype=float)).notna().any()]
    has_repro = summary.get("public_repro_linear_top1", pd.Series()).notna().any()
    labels = {m.column: m.label.removesuffix(" (%)") for m in metric_columns}

    header = [*keys, "n", "health", *(m.label for m in metric_columns), "pretrain time", "final loss", "runs"]
    for column in references:
        header += [f"paper {labels[column]} (%)", "gap (pp)", "paper protocol"]
    header += ["public repro (%)"] if has_repro else []
    header += ["ref"] if references or has_repro else []

    cells = []
    for _, row in summary.iterrows():
        line = [_key_text(row[k]) for k in keys] + [str(int(row["n"])), row["health"]]
        line += [_mean_pm_std(row[f"{m.column}_mean"], row[f"{m.column}_std"], pm) for m in metric_columns]
        line += [format_duration(row["pretrain_wall_s_mean"]),
                 f"{row['final_loss_mean']:.4g}" if _finite(row["final_loss_mean"]) else "-",
                 _status_text(row, summary.attrs["status_columns"])]
        for column in references:
            paper, gap = row[f"paper_{column}"], row[f"gap_{column}"]
            line += [f"{paper:.2f}" if _finite(paper) else "-", f"{gap:+.2f}" if _finite(gap) else "-",
                     _key_text(row[f"protocol_{column}"])]
        line += [_key_text(row["public_repro_linear_top1"])] if has_repro else []
        line += [_key_text(row["ref"])] if references or has_repro else []
        cells.append(line)
    return header, cells


def to_markdown(header: list[str], cells: list[list[str]]) -> str:
    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, cells)]) + "\n"


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                   "±": r"$\pm$", "<": r"$<$", ">": r"$>$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def to_latex(header: list[str], cells: list[list[str]], caption: str) -> str:
    """A booktabs tabular; text columns left, the rest right."""
    numeric = [all(re.match(r"^[-+~<>=]*\d", row[i]) or row[i] == "-" for row in cells) if cells else False
               for i in range(len(header))]
    spec = "".join("r" if is_num else "l" for is_num in numeric)
    lines = [r"% needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{latex_escape(caption)}}}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in cells]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def format_console_table(records: list[dict], include_unhealthy: bool = False) -> str:
    """The quickstart's summary: one line per run group, readable in an 80-120 column terminal."""
    if not records:
        return "no result records yet"
    summary, keys = summarise(records, include_unhealthy=include_unhealthy)
    extra = [k for k in keys if k not in ("method", "dataset", "arch")]
    header = ["method", "dataset", "arch", *extra, "n", "health", "linear top-1 %", "kNN@20 top-1 %", "pretrain"]
    statuses = summary.attrs["status_columns"]
    show_status = bool(summary[[s for s in statuses if s != "done"]].to_numpy().sum())
    header += ["runs"] if show_status else []
    rows = []
    for _, row in summary.iterrows():
        line = [_key_text(row[k]) for k in ("method", "dataset", "arch", *extra)] + [str(int(row["n"])), row["health"]]
        line += [_mean_pm_std(row["linear_top1_mean"], row["linear_top1_std"], " ± "),
                 _mean_pm_std(row["knn_top1@20_mean"], row["knn_top1@20_std"], " ± "),
                 format_duration(row["pretrain_wall_s_mean"])]
        line += [_status_text(row, statuses)] if show_status else []
        rows.append(line)
    numeric = {"n", "linear top-1 %", "kNN@20 top-1 %", "pretrain"}
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def fmt(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if h in numeric else v.ljust(w)
                         for v, w, h in zip(values, widths, header)).rstrip()

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, rows)])


def table_notes(paper_numbers: dict, include_unhealthy: bool = False) -> str:
    """The line under every table (table.md, table.tex, report.html): what the cells mean."""
    return (f"Mean ± sample std (ddof 1) over the n finished runs of each group, in %; gap = ours - reference, "
            f"in percentage points. References: evaluation/paper_numbers.yaml version {paper_numbers['version']}. "
            f"Health (evaluation/health.py): runs that did not learn are "
            + ("included in the means (asked for)." if include_unhealthy else
               "left out of the means and n (lejepa report --include-unhealthy keeps them)."))


def write_tables(manifest_name: str, records: list[dict], out_dir: Path,
                 group_by: list[str] | None = None, include_unhealthy: bool = False) -> list[Path]:
    paper_numbers = load_paper_numbers()
    summary, keys = summarise(records, group_by, paper_numbers, include_unhealthy)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, tex_path = (out_dir / f"table.{ext}" for ext in ("csv", "md", "tex"))
    summary.to_csv(csv_path, index=False)
    header, cells = display_table(summary, keys)
    notes = table_notes(paper_numbers, include_unhealthy)
    md_path.write_text(f"# {manifest_name}\n\n{to_markdown(header, cells)}\n{notes}\n")
    tex_path.write_text(to_latex(header, cells, f"{manifest_name}. {notes}"))
    return [csv_path, md_path, tex_path]
