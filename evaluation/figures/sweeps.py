"""Sweep figures: training loss against accuracy, accuracy over lambda x views, the SIGReg slices/knots
ablation (the suite's drawings of the paper's Figs. 1, 8 and its SIGReg ablations, from a study's records)."""

from __future__ import annotations

import statistics
from collections import Counter

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from evaluation.figures.common import (
    LAMBDA,
    SkipFigure,
    accuracy_key,
    accuracy_label,
    by_value,
    done,
    finite,
    in_domain,
    mean_std,
    most_common,
    new_figure,
    paper_rho_text,
    register_figure,
    swept_key,
)
from evaluation.health import DID_NOT_LEARN
from evaluation.rows import sort_key


@register_figure("loss_vs_accuracy", marks_unhealthy=True)
def loss_vs_accuracy(rows: list[dict], min_runs: int = 3, include_unhealthy: bool = False) -> Figure:
    """Final training loss against frozen linear accuracy across a sweep, with Spearman's rho (the paper
    reports the training loss predicting downstream accuracy). One method and dataset per plot: losses of
    different methods are not on one scale. Runs that did not learn are drawn as grey crosses and left out
    of rho unless include_unhealthy."""
    metric = accuracy_key(rows)
    runs = in_domain(done(rows, "pretrain.final_loss", metric))
    if not runs:
        raise SkipFigure(f"no finished run has both pretrain.final_loss and {metric}")
    runs, caption = most_common(runs, ("method", "dataset"))
    flagged = [r for r in runs if r.get("health") == DID_NOT_LEARN]
    if not include_unhealthy:
        runs = [r for r in runs if r.get("health") != DID_NOT_LEARN]
    if len(runs) < min_runs:
        raise SkipFigure(f"needs at least {min_runs} finished runs of one method and dataset with a final "
                         f"loss and {metric}" + (" that learnt" if flagged and not include_unhealthy else "")
                         + f"; found {len(runs)}")
    loss = np.array([r["pretrain.final_loss"] for r in runs], dtype=float)
    accuracy = np.array([r[metric] * 100 for r in runs], dtype=float)
    rho = float(spearmanr(loss, accuracy).statistic)

    fig, (ax,) = new_figure(width=6.0, height=4.5)
    if flagged:
        ax.scatter([r["pretrain.final_loss"] for r in flagged], [r[metric] * 100 for r in flagged], marker="x",
                   color="grey", zorder=3, label="did not learn" + (" (in ρ)" if include_unhealthy else " (not in ρ)"))
    swept = swept_key(runs)
    if swept:
        for value in sorted({r.get(swept) for r in runs}, key=sort_key):
            picked = [i for i, r in enumerate(runs) if r.get(swept) == value]
            ax.scatter(loss[picked], accuracy[picked], label=f"{swept.removeprefix('spec.')} = {value}")
    else:
        ax.scatter(loss, accuracy, label="runs")
    ax.legend(fontsize="small", title=paper_rho_text(), title_fontsize="small")
    ax.set_xlabel("final training loss")
    ax.set_ylabel(accuracy_label(metric))
    unhealthy = (f"; {len(flagged)} run(s) that did not learn marked ×, {'in' if include_unhealthy else 'not in'} ρ"
                 if flagged else "")
    ax.set_title(f"{caption}\nSpearman ρ = {rho:+.3f} (n = {len(runs)}{unhealthy})", fontsize="medium")
    return fig


# ---------------------------------------------------------------- 2. stability over lambda x views

def views_of(row: dict) -> int | None:
    g, local = row.get("spec.views.global_views"), row.get("spec.views.local_views")
    return int(g) + int(local) if finite(g) and finite(local) else None


@register_figure("stability_heatmap")
def stability_heatmap(rows: list[dict]) -> Figure:
    """Accuracy over lambda x number of views (or x batch size when the views do not vary): the paper's
    claim is that LeJEPA is stable across these without tuning."""
    metric = accuracy_key(rows)
    runs = in_domain(done(rows, LAMBDA, metric))
    if not runs:
        raise SkipFigure(f"no finished run has {LAMBDA} and {metric} (set method.lamb in the manifest)")
    runs, caption = most_common(runs, ("method", "dataset", "arch"))
    for r in runs:
        r["views"] = views_of(r)
    column, column_label = "views", "views per image (global + local)"
    if len({r["views"] for r in runs}) < 2 and len({r.get("spec.train.batch_size") for r in runs}) > 1:
        column, column_label = "spec.train.batch_size", "batch size"
    lambdas = sorted({r[LAMBDA] for r in runs})
    columns = sorted({r.get(column) for r in runs}, key=lambda v: (v is None, v or 0))
    if len(lambdas) * len(columns) < 2:
        raise SkipFigure(f"needs at least two (lambda, {column_label}) cells; found lambda {lambdas} and "
                         f"{column_label} {columns}")
    grid = np.full((len(lambdas), len(columns)), np.nan)
    counts = np.zeros_like(grid, dtype=int)
    for i, lamb in enumerate(lambdas):
        for j, col in enumerate(columns):
            cell = [r[metric] * 100 for r in runs if r[LAMBDA] == lamb and r.get(column) == col]
            if cell:
                grid[i, j], counts[i, j] = statistics.fmean(cell), len(cell)

    fig, (ax,) = new_figure(width=1.2 * len(columns) + 3, height=0.8 * len(lambdas) + 2)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto", origin="lower")
    fig.colorbar(image, ax=ax, label=accuracy_label(metric))
    for i, j in zip(*np.nonzero(counts)):
        ax.text(j, i, f"{grid[i, j]:.1f}\n(n={counts[i, j]})", ha="center", va="center", fontsize="small",
                color="white" if grid[i, j] < np.nanmean(grid) else "black")
    ax.set_xticks(range(len(columns)), [str(c) for c in columns])
    ax.set_yticks(range(len(lambdas)), [f"{v:g}" for v in lambdas])
    ax.set_xlabel(column_label)
    ax.set_ylabel("λ (method.lamb)")
    ax.set_title(f"{caption}\n{accuracy_label(metric)} over λ × {column_label}", fontsize="medium")
    return fig


# ---------------------------------------------------------------- 5. slices and knots ablation

ABLATIONS = (("spec.method.num_slices", "number of slices K", True), ("spec.method.knots", "integration knots", False))


@register_figure("sigreg_ablation")
def sigreg_ablation(rows: list[dict]) -> Figure:
    """Accuracy against the number of SIGReg slices and of quadrature knots. Each panel holds the other
    key at its most common value, so a panel shows one factor at a time."""
    metric = accuracy_key(rows)
    runs = in_domain(done(rows, metric))
    runs = [r for r in runs if any(finite(r.get(k)) for k, _, _ in ABLATIONS)]
    if not runs:
        raise SkipFigure(f"no finished run has method.num_slices or method.knots and {metric}")
    runs, caption = most_common(runs, ("method", "dataset", "arch"))
    panels = []
    for key, label, log_x in ABLATIONS:
        others = [k for k, _, _ in ABLATIONS if k != key]
        held = {k: Counter(r.get(k) for r in runs).most_common(1)[0][0] for k in others}
        subset = [r for r in runs if finite(r.get(key)) and all(r.get(k) == v for k, v in held.items())]
        if len({r[key] for r in subset}) > 1:
            panels.append((key, label, log_x, subset, held))
    if not panels:
        raise SkipFigure("neither method.num_slices nor method.knots takes two values among comparable runs")

    fig, axes = new_figure(len(panels))
    for ax, (key, label, log_x, subset, held) in zip(axes, panels):
        values = by_value(subset, key, metric)
        stats = [mean_std(v) for v in values.values()]
        ax.errorbar(list(values), [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", capsize=3)
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
        ax.set_ylabel(accuracy_label(metric))
        fixed = ", ".join(f"{k.removeprefix('spec.method.')} = {v}" for k, v in held.items() if v is not None)
        ax.set_title(f"{label}" + (f" ({fixed})" if fixed else ""), fontsize="medium")
    fig.suptitle(f"{caption}: SIGReg ablation", fontsize="medium")
    return fig
