"""The figures' shared pieces: the registry, a fresh Agg canvas per figure, and record-row helpers.

Runs that did not learn (evaluation/health.py) are left out of every figure unless asked, and the caption
says so. Every figure is registered by name, returns its matplotlib Figure (so tests can read the plotted data back)
and, given an output folder, saves <name>.png and <name>.pdf. When the records lack what a figure needs it
returns None and tells `on_skip` why. Figures are drawn on Agg canvases created per figure, never through
pyplot's global state, so a report leaks no open figures and needs no display.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evaluation.health import DID_NOT_LEARN, study_health
from evaluation.references import load_paper_numbers
from evaluation.rows import describe, varying_keys

log = logging.getLogger(__name__)

LINEAR = "evaluation.linear_top1"
KNN = "evaluation.knn_top1@20"
LAMBDA = "spec.method.lamb"


class SkipFigure(Exception):
    """The records do not hold what this figure needs; the message says what is missing."""


SkipHandler = Callable[[str, str], None]
FIGURES: dict[str, Callable[..., Figure | None]] = {}


def log_skip(name: str, reason: str) -> None:
    log.info("figure %s skipped: %s", name, reason)


def save_figure(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def health_rows(records: list[dict]) -> list[dict]:
    """describe() of each record, with its verdict under "health" (evaluation/health.py, cross-run check
    included)."""
    verdicts = study_health(records)
    rows = [describe(r) for r in records]
    for row, record in zip(rows, records):
        row["health"] = verdicts.get(record["run_id"], {}).get("verdict")
    return rows


def _note_health(fig: Figure, text: str) -> None:
    title = fig.get_suptitle()
    fig.suptitle(f"{title}\n{text}" if title else text, fontsize="medium")


def register_figure(name: str, marks_unhealthy: bool = False):
    """Wrap draw(rows, **options) -> Figure into fn(records, out_dir=None, on_skip=None, include_unhealthy=False,
    **options). Runs that did not learn are left out of the rows and the caption says how many, unless
    include_unhealthy (then the caption says they are in); a figure that marks them itself (marks_unhealthy)
    gets every row and the include_unhealthy flag instead."""

    def decorate(draw: Callable[..., Figure]) -> Callable[..., Figure | None]:
        def figure(records: list[dict], out_dir: Path | None = None, on_skip: SkipHandler | None = None,
                   include_unhealthy: bool = False, **options: Any) -> Figure | None:
            rows = health_rows(records)
            unhealthy = sum(row["health"] == DID_NOT_LEARN for row in rows)
            if marks_unhealthy:
                options["include_unhealthy"] = include_unhealthy
            elif not include_unhealthy:
                rows = [row for row in rows if row["health"] != DID_NOT_LEARN]
            try:
                fig = draw(rows, **options)
            except SkipFigure as skip:
                (log_skip if on_skip is None else on_skip)(name, str(skip))
                return None
            if unhealthy and not marks_unhealthy:
                _note_health(fig, f"{unhealthy} run(s) that did not learn {'included' if include_unhealthy else 'left out'}"
                                  " (report.md, Health)")
            if out_dir is not None:
                save_figure(fig, Path(out_dir), name)
            return fig

        figure.__name__, figure.__doc__ = draw.__name__, draw.__doc__
        FIGURES[name] = figure
        return figure

    return decorate


def new_figure(panels: int = 1, width: float = 5.0, height: float = 4.0) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * panels, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, panels, i + 1) for i in range(panels)]


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def done(rows: list[dict], *required: str) -> list[dict]:
    return [r for r in rows if r["status"] == "done" and all(finite(r.get(k)) for k in required)]


def in_domain(rows: list[dict]) -> list[dict]:
    """Sweeps compare pretraining settings on one dataset; a transfer run belongs to figure 6 instead."""
    return [r for r in rows if not r["transfer_from"]]


def accuracy_key(rows: list[dict]) -> str:
    """The linear probe when any finished run has it, else kNN@20."""
    return LINEAR if done(rows, LINEAR) else KNN


def accuracy_label(key: str) -> str:
    return "linear probe top-1 (%)" if key == LINEAR else "kNN@20 top-1 (%)"


def most_common(rows: list[dict], keys: tuple[str, ...]) -> tuple[list[dict], str]:
    """Keep the rows of the most common combination of `keys`, so one plot never mixes datasets or
    methods; returns them and a caption naming the combination."""
    counts = Counter(tuple(r.get(k) for k in keys) for r in rows)
    chosen = max(counts, key=lambda combo: (counts[combo], "lejepa" in combo))  # ties: the paper's method
    kept = [r for r in rows if tuple(r.get(k) for k in keys) == chosen]
    caption = ", ".join(str(v) for v in chosen if v is not None)
    if len(counts) > 1:
        caption += f" (most runs; {len(counts) - 1} other combination(s) not shown)"
    return kept, caption


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def by_value(rows: list[dict], key: str, value_key: str) -> dict[Any, list[float]]:
    out: dict[Any, list[float]] = {}
    for r in rows:
        out.setdefault(r[key], []).append(float(r[value_key]) * 100)
    return dict(sorted(out.items()))


def paper_rho_text() -> str:
    """'reported |ρ|: up to 0.99, above 0.94' from paper_numbers.yaml (the tables' source too)."""
    entries = [e for e in load_paper_numbers()["entries"] if e.get("metric") == "spearman_rho"]
    words = {"up_to": "up to ", "above": "above ", "about": "about "}
    return "reported |ρ|: " + ", ".join(f"{words.get(e.get('qualifier'), '')}{e['value']:g}" for e in entries)


def swept_key(rows: list[dict], within: tuple[str, ...] = (), max_values: int = 8) -> str | None:
    """The hyper-parameter with the most distinct values inside groups of `within` (a legend of at most
    max_values)."""
    keys = [k for k in varying_keys(rows, list(within)) if 1 < len({str(r.get(k)) for r in rows}) <= max_values]
    return max(keys, key=lambda k: len({str(r.get(k)) for r in rows}), default=None)




def in_domain_first(source: str | None) -> tuple[bool, str]:
    """Sort key for a run's transfer source: in-domain (None) before every source, sources by name."""
    return source is not None, str(source)


def figure_caption(fig: Figure) -> str:
    """The figure's titles on one line: what report.md says next to the file (e.g. figure 1's rho)."""
    titles = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
    return "; ".join(" ".join(t.split()) for t in titles if t.strip())
