"""Report figures, each a function of result records only: results/<exp>/figures/.

The registry and helpers are in common.py; each figure module registers its figures on import.
"""

from __future__ import annotations

from pathlib import Path

from evaluation.figures import architectures, spectrum, sweeps  # noqa: F401  (registration)
from evaluation.figures.architectures import architecture_sweep, transfer_vs_in_domain
from evaluation.figures.common import FIGURES, SkipFigure, figure_caption, new_figure, save_figure
from evaluation.figures.spectrum import effective_rank, embedding_spectrum
from evaluation.figures.sweeps import loss_vs_accuracy, sigreg_ablation, stability_heatmap

__all__ = ["FIGURES", "SkipFigure", "architecture_sweep", "effective_rank", "embedding_spectrum", "figure_caption",
           "loss_vs_accuracy", "new_figure", "save_figure", "sigreg_ablation", "stability_heatmap",
           "transfer_vs_in_domain", "write_figures"]


def write_figures(records: list[dict], out_dir: Path,
                  include_unhealthy: bool = False) -> tuple[list[Path], dict[str, str], dict[str, str]]:
    """Every applicable figure under out_dir/figures (runs that did not learn left out unless
    include_unhealthy); returns the files, {figure: why it was skipped} and {figure: its caption}."""
    figure_dir = Path(out_dir) / "figures"
    skipped: dict[str, str] = {}

    def note(name: str, reason: str) -> None:
        skipped[name] = reason

    made = {name: draw(records, figure_dir, on_skip=note, include_unhealthy=include_unhealthy)
            for name, draw in FIGURES.items()}
    captions = {name: figure_caption(fig) for name, fig in made.items() if fig is not None}
    paths = [figure_dir / f"{name}.{ext}" for name in captions for ext in ("png", "pdf")]
    return paths, skipped, captions
