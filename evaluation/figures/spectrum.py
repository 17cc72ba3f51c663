"""The embedding spectrum (the suite's own figure, not the paper's): eigenvalues of the frozen features'
covariance per method and setting, and the effective rank they imply."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from evaluation.figures.common import SkipFigure, in_domain_first, new_figure, register_figure, swept_key
from evaluation.health import effective_rank
from evaluation.rows import sort_key, varying_keys

SPECTRUM = "evaluation.embedding_spectrum"


def _line_keys(rows: list[dict], within: tuple[str, ...], max_lines: int = 8) -> list[str]:
    """Hyper-parameters that split a group of `within` into lines: all that vary, when their settings make
    at most max_lines lines (an ablation along separate axes); else the most-swept one (a full grid)."""
    varying = varying_keys(rows, list(within))
    if len({tuple(str(r.get(k)) for k in (*within, *varying)) for r in rows}) <= max_lines:
        return varying
    swept = swept_key(rows, within)
    return [swept] if swept else []


def _line_order(method: str, arch: str, source: str | None, *values: Any) -> list:
    """Method, architecture, in-domain before transferred, then the settings in numeric order."""
    return [sort_key(method), sort_key(arch), in_domain_first(source), *map(sort_key, values)]


@register_figure("embedding_spectrum")
def embedding_spectrum(rows: list[dict]) -> Figure:
    """Sorted eigenvalues of the frozen-feature covariance, normalised to sum 1, per method (log scale):
    an isotropic embedding is flat at 1/D; collapse shows as a steep drop. Within a sweep, one line per
    value of the swept hyper-parameter (e.g. lambda); spectra of a line's other runs (seeds, other axes)
    are averaged, truncated to the shortest."""
    runs = [r for r in rows if r["status"] == "done" and isinstance(r.get(SPECTRUM), tuple) and len(r[SPECTRUM]) > 1]
    if not runs:
        raise SkipFigure(f"no finished run has {SPECTRUM} (a list of covariance eigenvalues)")
    datasets = sorted({r["dataset"] for r in runs})
    fig, axes = new_figure(len(datasets))
    for ax, dataset in zip(axes, datasets):
        here = [r for r in runs if r["dataset"] == dataset]
        within = ("method", "arch", "transfer_from")  # a transferred backbone is its own line
        split_by = _line_keys(here, within=within)
        groups: dict[tuple, list[np.ndarray]] = {}
        for r in here:
            spectrum = np.clip(np.sort(np.asarray(r[SPECTRUM], dtype=float))[::-1], 0, None)
            key = (*(r.get(k) for k in within), *(r.get(k) for k in split_by))
            groups.setdefault(key, []).append(spectrum / spectrum.sum())
        for (method, arch, source, *values), spectra in sorted(groups.items(), key=lambda item: _line_order(*item[0])):
            length = min(len(s) for s in spectra)
            mean = np.mean([s[:length] for s in spectra], axis=0)
            positive = mean > 0
            setting = (f", from {source}" if source else "") + "".join(
                f", {k.rsplit('.', 1)[-1]} = {v}" for k, v in zip(split_by, values))
            ax.plot(np.arange(1, length + 1)[positive], mean[positive],
                    label=f"{method} ({arch}{setting}), eff. rank {effective_rank(mean):.0f}/{length}")
        ax.set_yscale("log")
        ax.set_xlabel("eigenvalue rank")
        ax.set_ylabel("eigenvalue / trace")
        ax.set_title(f"{dataset}: embedding covariance spectrum", fontsize="medium")
        if len(groups) <= 3:
            ax.legend(fontsize="small")
        else:  # a long legend goes under the plot instead of over the curves
            ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return fig
