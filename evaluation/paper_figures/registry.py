"""The registry of figures `lejepa figures` knows: the paper's (arXiv 2511.08544, numbered as there) and the
suite's own, each with what it needs.

Three kinds of entry, each one decorated function:

- `@theory_figure(id, title, about)` on make(out_dir, **options) -> Drawn: computed from the paper's
  definitions on the CPU, needs nothing;
- `@data_figure(id, title, about, manifest=...)` on draw(records, **options) -> Drawn: drawn from the result
  records of a manifest; the entry's make(out_dir, records=..., **options) skips, saying so, without them;
- `planned_data_figure(id, title, about, needs)`: a paper figure this suite cannot draw yet, listed so that
  `lejepa figures list` says so and `lejepa figures paper` reports it skipped with the reason.

A make returns Drawn: the matplotlib Figure(s), a caption that quotes a number read from the plotted data,
and any data files it cached next to the figure. Figures are drawn on Agg canvases made per figure, never
through pyplot's global state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lejepa.threads import one_thread


class SkipFigure(Exception):
    """This figure cannot be drawn here; the message says what it needs."""


class Drawn(NamedTuple):
    figures: Figure | list[Figure]
    caption: str
    data_files: tuple[Path, ...] = ()

    def figure_list(self) -> list[Figure]:
        return list(self.figures) if isinstance(self.figures, (list, tuple)) else [self.figures]


@dataclass(frozen=True)
class PaperFigure:
    id: str
    title: str
    about: str  # what the figure shows, the paper's caption in our words
    needs: str  # "nothing", "records of manifest paper/x", "a ViT checkpoint"
    origin: str  # "paper" or "suite"
    make: Callable[..., Drawn] = field(repr=False)
    kind: str = "theory"  # theory | data | planned

    def draw(self, out_dir: Path | None = None, **options: Any) -> Drawn:
        drawn = self.make(out_dir, **options)
        if not isinstance(drawn, Drawn):
            raise TypeError(f"figure {self.id} returned {type(drawn).__name__}, not Drawn(figures, caption)")
        return drawn


REGISTRY: dict[str, PaperFigure] = {}


def _register(entry: PaperFigure) -> None:
    if entry.id in REGISTRY:
        raise ValueError(f"figure id {entry.id!r} is registered twice")
    if entry.origin not in ("paper", "suite"):
        raise ValueError(f"figure {entry.id}: origin must be 'paper' or 'suite', not {entry.origin!r}")
    REGISTRY[entry.id] = entry


def theory_figure(fig_id: str, title: str, about: str, origin: str = "paper"):
    """Register make(out_dir, **options) -> Drawn, a figure computed from definitions alone."""

    def decorate(make: Callable[..., Drawn]) -> Callable[..., Drawn]:
        @functools.wraps(make)
        def single_threaded(*args: Any, **options: Any) -> Drawn:
            # Small tensors: intra-op threads only add synchronisation (on a busy machine, many times slower).
            with one_thread():
                return make(*args, **options)

        _register(PaperFigure(fig_id, title, about, "nothing", origin, single_threaded, "theory"))
        return single_threaded

    return decorate


def data_figure(fig_id: str, title: str, about: str, manifest: str, origin: str = "paper"):
    """Register draw(records, **options) -> Drawn, drawn from the records of `manifest`."""

    def decorate(draw: Callable[..., Drawn]) -> Callable[..., Drawn]:
        def make(out_dir: Path | None = None, records: list[dict] | None = None, **options: Any) -> Drawn:
            if not records:
                raise SkipFigure(f"needs the records of manifest {manifest} (lejepa launch {manifest})")
            return draw(records, **options)

        _register(PaperFigure(fig_id, title, about, f"records of manifest {manifest}", origin, make, "data"))
        return draw

    return decorate


def planned_data_figure(fig_id: str, title: str, about: str, needs: str) -> None:
    """List a paper figure whose drawing this suite does not have yet; it is always skipped, saying why."""

    def make(out_dir: Path | None = None, **options: Any) -> Drawn:
        raise SkipFigure(f"not drawn by this suite yet; it will need {needs}")

    _register(PaperFigure(fig_id, title, about, needs, "paper", make, "planned"))


def figure_ids() -> list[str]:
    """Registered ids, the paper's in figure order, then the suite's."""
    def order(fig_id: str) -> tuple:
        entry = REGISTRY[fig_id]
        digits = "".join(c for c in fig_id if c.isdigit())
        return (entry.origin != "paper", int(digits) if digits else 0, fig_id)

    return sorted(REGISTRY, key=order)


def select(only: list[str] | None) -> list[PaperFigure]:
    if not only:
        return [REGISTRY[i] for i in figure_ids()]
    unknown = [i for i in only if i not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown figure id(s) {', '.join(unknown)}; known: {', '.join(figure_ids())} "
                         "(see `lejepa figures list`)")
    return [REGISTRY[i] for i in dict.fromkeys(only)]


def blank_figure(width: float, height: float) -> Figure:
    """A Figure (inches) on its own Agg canvas, no axes yet."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def new_figure(rows: int = 1, cols: int = 1, width: float = 4.0, height: float = 3.5, **subplot_kw: Any
               ) -> tuple[Figure, list]:
    """A Figure and its rows x cols axes (each width x height inches), row by row."""
    fig = blank_figure(width * cols, height * rows)
    axes = [fig.add_subplot(rows, cols, i + 1, **subplot_kw) for i in range(rows * cols)]
    return fig, axes


