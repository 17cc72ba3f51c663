"""The paper's figures of training loss against accuracy (arXiv 2511.08544, Figs. 1a, 11 and 19): the
training loss as a label-free signal of downstream accuracy, raw and scaled as in Eq. 8.

Runs are compared within one experiment, dataset, method and backbone (evaluation/selection.py); rho is
Spearman's correlation of accuracy with the negated (scaled) loss, positive when a lower loss goes with a
higher accuracy, as the paper reports it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.ticker import NullFormatter
from scipy.stats import spearmanr

from evaluation.accuracies import metrics_accuracy, probe_accuracy, probe_label, probe_of
from evaluation.paper_figures.registry import Drawn, SkipFigure, data_figure, new_figure
from evaluation.paper_figures.study import finished, panels, source_text
from evaluation.references import load_paper_numbers
from evaluation.selection import (
    MIN_RUNS,
    PAPER_ALPHA,
    PAPER_ALPHA_SOURCE,
    best_alpha,
    final_loss,
    group_label,
    lambda_of,
    loss_accuracy_rho,
    loss_groups,
    rho_curve,
)
from lejepa.metrics_log import read_metrics

# the CPU study of this suite, or the paper's lambda x lr x weight-decay sweep over architectures
STUDY = "loss_accuracy_cpu or paper/fig9"
ALPHAS = tuple(round(a, 3) for a in np.linspace(0.0, 1.0, 41))
MAX_PANELS = 12


def _rho(value: float) -> str:
    return "undefined" if math.isnan(value) else f"{value:+.3f}"


def _paper_rho() -> str:
    entry = next(e for e in load_paper_numbers()["entries"] if e["id"] == "paper-loss-accuracy-spearman")
    return f"the paper reports up to {entry['value']:g} ({entry['source']})"


def scored_groups(records: list[dict]) -> list[tuple[str, list[dict], str]]:
    """(label, runs, probe) for each group of at least MIN_RUNS finished runs with a loss and an accuracy."""
    out = []
    for key, runs in loss_groups(finished(records)).items():
        probe = probe_of(runs)
        runs = [r for r in runs if probe_accuracy(r, probe) is not None]
        if len(runs) >= MIN_RUNS:
            out.append((group_label(key), runs, probe))
    if not out:
        raise SkipFigure(f"needs at least {MIN_RUNS} finished runs of one dataset, method and backbone with "
                         "pretrain.final_loss and a probe accuracy")
    return out[:MAX_PANELS]


def _scatter_loss_accuracy(ax, runs: list[dict], probe: str, title: str) -> tuple[float, float]:
    loss = np.array([final_loss(r) for r in runs])
    accuracy = np.array([probe_accuracy(r, probe) * 100 for r in runs])
    lambdas = [lambda_of(r) for r in runs]
    if len({v for v in lambdas if v is not None}) > 1:
        points = ax.scatter(loss, accuracy, c=np.log10(lambdas), cmap="viridis")
        ax.figure.colorbar(points, ax=ax, label="log10 λ")
    else:
        ax.scatter(loss, accuracy)
    raw = loss_accuracy_rho(runs, 0.0, probe)[0]
    scaled = loss_accuracy_rho(runs, PAPER_ALPHA, probe)[0]
    ax.set_xlabel("final training loss")
    ax.set_ylabel(f"{probe_label(probe)} (%)")
    ax.set_title(f"{title}\nρ = {_rho(raw)} raw, {_rho(scaled)} at α = {PAPER_ALPHA:g} (n = {len(runs)})",
                 fontsize="small")
    return raw, scaled


@data_figure("fig1a", "Training loss vs linear-probe accuracy across runs",
             "Each run's final training loss against its frozen-probe accuracy, with Spearman's rho on the raw "
             "loss and on Eq. 8's loss / lambda^alpha (paper Fig. 1, top left: ViT-base on ImageNet-1k there). "
             "The largest group of comparable runs.", manifest=STUDY)
def fig1a(records: list[dict]) -> Drawn:
    label, runs, probe = scored_groups(records)[0]
    fig, (ax,) = new_figure(width=5.5, height=4.5)
    raw, scaled = _scatter_loss_accuracy(ax, runs, probe, label)
    caption = (f"{source_text(runs)} {label}: Spearman rho of {probe_label(probe)} against the negated "
               f"final loss = {_rho(raw)} raw and {_rho(scaled)} at alpha = {PAPER_ALPHA:g} (n = {len(runs)}); "
               f"{_paper_rho()}.")
    return Drawn(fig, caption)


@data_figure("fig19", "Training loss vs accuracy, per dataset and model",
             "Fig. 1a for every group of comparable runs (dataset x backbone) of the records, one panel each "
             "(paper Fig. 19; the within-run version is fig19b).", manifest=STUDY)
def fig19(records: list[dict]) -> Drawn:
    groups = scored_groups(records)
    fig, axes = panels(len(groups))
    parts = []
    for ax, (label, runs, probe) in zip(axes, groups):
        raw, scaled = _scatter_loss_accuracy(ax, runs, probe, label)
        parts.append(f"{label}: rho {_rho(raw)} raw, {_rho(scaled)} at alpha {PAPER_ALPHA:g} (n = {len(runs)})")
    every = [r for _, runs, _ in groups for r in runs]
    return Drawn(fig, f"{source_text(every)} " + "; ".join(parts) + f". {_paper_rho()}.")


def _checkpoint_curves(records: list[dict], results_root: Path) -> tuple[dict[str, list], str]:
    """{run_id: [(step, loss, accuracy)]} from each run's metrics.jsonl lines that carry an accuracy."""
    curves: dict[str, list] = {}
    key = ""
    for record in records:
        path = Path(results_root) / str(record.get("experiment")) / str(record.get("run_id")) / "metrics.jsonl"
        points = []
        for line in read_metrics(path):
            found = metrics_accuracy(line)
            if found is not None and isinstance(line.get("loss"), (int, float)):
                key = found[0]
                points.append((line["step"], float(line["loss"]), found[1]))
        if len(points) >= 2:
            curves[str(record["run_id"])] = points
    return curves, key


@data_figure("fig19b", "Training loss vs accuracy along one run's checkpoints",
             "For each run, the training loss against an accuracy measured during training (an online probe "
             "logged in metrics.jsonl), one curve per run, coloured by step (paper Fig. 19, within-run).",
             manifest=STUDY + ", with an online probe logged")
def fig19b(records: list[dict], results_root: Path | None = None) -> Drawn:
    if results_root is None:
        raise SkipFigure("needs the runs' folders for their metrics.jsonl (`lejepa figures paper --records "
                         "MANIFEST` passes the results root)")
    curves, key = _checkpoint_curves(finished(records), results_root)
    if not curves:
        raise SkipFigure(f"no metrics.jsonl line of these {len(records)} runs carries an accuracy (a key like "
                         "online_linear_top1): needs an online probe logged during training")
    fig, (ax,) = new_figure(width=5.5, height=4.5)
    rhos = []
    for run_id, points in sorted(curves.items()):
        steps, loss, accuracy = (np.array(v, dtype=float) for v in zip(*points))
        ax.plot(loss, accuracy * 100, color="0.7", linewidth=0.8, zorder=1)
        ax.scatter(loss, accuracy * 100, c=steps, cmap="viridis", s=12, zorder=2, label=run_id)
        if len(points) >= MIN_RUNS and np.ptp(loss) > 0 and np.ptp(accuracy) > 0:
            rhos.append(float(spearmanr(accuracy, -loss).statistic))
    ax.set_xlabel("training loss")
    ax.set_ylabel(f"{key} (%)")
    median = float(np.median(rhos)) if rhos else math.nan
    ax.set_title(f"{len(curves)} run(s): median within-run ρ = {_rho(median)}", fontsize="small")
    caption = (f"{source_text(records)} Training loss against {key} logged during training, "
               f"{len(curves)} run(s); median within-run Spearman rho (accuracy vs -loss) = {_rho(median)}.")
    return Drawn(fig, caption)


@data_figure("fig11", "Spearman rho of accuracy against loss / lambda^alpha",
             "Spearman correlation between accuracy and the training loss scaled by lambda^(-alpha) (paper "
             "Eq. 8) as a function of alpha, per dataset and model: about 0.85 at alpha = 0, up to 0.99 near "
             "0.4 (paper Fig. 11).", manifest=STUDY)
def fig11(records: list[dict], alphas: tuple[float, ...] = ALPHAS) -> Drawn:
    groups = scored_groups(records)
    alphas_array = np.asarray(alphas, dtype=float)
    fig, (ax,) = new_figure(width=6.0, height=4.5)
    parts = []
    for label, runs, probe in groups:
        rhos = rho_curve(runs, alphas_array, probe)
        (line,) = ax.plot(alphas_array, rhos, label=f"{label} (n = {len(runs)})")
        alpha_best, rho_best = best_alpha(alphas_array, rhos)
        if not math.isnan(alpha_best):
            ax.plot([alpha_best], [rho_best], marker="o", color=line.get_color())
        lambdas = {lambda_of(r) for r in runs}
        flat = " (one lambda: rho does not depend on alpha)" if len(lambdas) < 2 else ""
        parts.append(f"{label}, {probe_label(probe)}, n = {len(runs)}: rho = {_rho(rhos[0])} at alpha = "
                     f"{alphas_array[0]:g}, best {_rho(rho_best)} at alpha = {alpha_best:g}, "
                     f"{_rho(loss_accuracy_rho(runs, PAPER_ALPHA, probe)[0])} at the paper's {PAPER_ALPHA:g}"
                     + flat)
    ax.axvline(PAPER_ALPHA, color="0.5", linestyle="--", linewidth=1, label=f"paper's α = {PAPER_ALPHA:g}")
    ax.set_xlabel("α (loss / λ^α)")
    ax.set_ylabel("Spearman ρ (accuracy, −scaled loss)")
    ax.legend(fontsize="x-small")
    ax.set_title("Eq. 8: accuracy against the scaled training loss", fontsize="medium")
    every = [r for _, runs, _ in groups for r in runs]
    caption = (f"{source_text(every)} " + "; ".join(parts)
               + f". The paper: {PAPER_ALPHA_SOURCE} (its runs: ImageNet-scale, many more than these).")
    return Drawn(fig, caption)


def _plane(ax, runs: list[dict], probe: str, title: str) -> None:
    pred = np.array([r["pretrain"]["final_parts"]["pred"] for r in runs], dtype=float)
    sigreg = np.array([r["pretrain"]["final_parts"]["sigreg"] for r in runs], dtype=float)
    accuracy = np.array([probe_accuracy(r, probe) * 100 for r in runs])
    points = ax.scatter(pred, sigreg, c=accuracy, cmap="viridis")
    ax.figure.colorbar(points, ax=ax, label=f"{probe_label(probe)} (%)")
    for values, set_scale, axis in ((pred, ax.set_xscale, ax.xaxis), (sigreg, ax.set_yscale, ax.yaxis)):
        if values.min() > 0 and values.max() / values.min() > 10:
            set_scale("log")
            axis.set_minor_formatter(NullFormatter())  # labels between decades crowd each other
    ax.set_xlabel("final prediction loss")
    ax.set_ylabel("final SIGReg loss")
    ax.set_title(title, fontsize="small")


def _plane_groups(records: list[dict]) -> list[tuple[str, list[dict], str]]:
    def has_parts(r: dict) -> bool:
        parts = (r.get("pretrain") or {}).get("final_parts") or {}
        return all(isinstance(parts.get(k), (int, float)) and math.isfinite(parts[k]) for k in ("pred", "sigreg"))

    with_parts = [r for r in finished(records) if has_parts(r)]
    if not with_parts:
        raise SkipFigure("no finished run has pretrain.final_parts pred and sigreg (LeJEPA runs have them)")
    return scored_groups(with_parts)


def _plane_caption(runs: list[dict], probe: str, label: str) -> str:
    accuracy = [probe_accuracy(r, probe) * 100 for r in runs]
    best = max(runs, key=lambda r: probe_accuracy(r, probe))
    parts = best["pretrain"]["final_parts"]
    return (f"{label}: {len(runs)} runs, {probe_label(probe)} {min(accuracy):.1f}-{max(accuracy):.1f} %, the "
            f"best at prediction {parts['pred']:.4g}, SIGReg {parts['sigreg']:.4g}")


@data_figure("fig10", "SIGReg vs prediction loss, coloured by accuracy",
             "Each run's final SIGReg and prediction losses as a point of the plane, coloured by downstream "
             "accuracy: iso-accuracy fronts point to the lower left (paper Fig. 10). The largest group of "
             "comparable runs.", manifest=STUDY)
def fig10(records: list[dict]) -> Drawn:
    label, runs, probe = _plane_groups(records)[0]
    fig, (ax,) = new_figure(width=5.5, height=4.5)
    _plane(ax, runs, probe, label)
    return Drawn(fig, f"{source_text(runs)} {_plane_caption(runs, probe, label)}.")


@data_figure("fig21", "SIGReg vs prediction loss, more models and datasets",
             "Fig. 10's plane for every group of comparable runs (dataset x backbone), one panel each "
             "(paper Fig. 21).", manifest="paper/fig9 or loss_accuracy_cpu")
def fig21(records: list[dict]) -> Drawn:
    groups = _plane_groups(records)
    fig, axes = panels(len(groups))
    for ax, (label, runs, probe) in zip(axes, groups):
        _plane(ax, runs, probe, label)
    every = [r for _, runs, _ in groups for r in runs]
    text = "; ".join(_plane_caption(runs, probe, label) for label, runs, probe in groups)
    return Drawn(fig, f"{source_text(every)} {text}.")
