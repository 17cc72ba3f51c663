"""The paper's sweep figures (arXiv 2511.08544): Fig. 8 (Table 7's lambda x number of views), Fig. 9 (one
recipe across architectures) and Fig. 12 (Galaxy10 accuracy by labelled samples per class, Table 3).

Accuracies are means over seeds (error bars: standard deviation over seeds). Where
evaluation/paper_numbers.yaml holds the paper's number for the same dataset, backbone, epochs, protocol and
settings, it is drawn beside ours as an open marker; a suite study at other settings matches none.
"""

from __future__ import annotations

import statistics

import numpy as np
from matplotlib.patches import Patch

from evaluation.accuracies import few_shot_accuracies, probe_accuracy, probe_label, probe_of
from evaluation.paper_figures.registry import Drawn, SkipFigure, data_figure, new_figure
from evaluation.paper_figures.study import (
    finished,
    frontier_curves,
    largest_group,
    panels,
    paper_value,
    source_text,
)
from evaluation.rows import describe, varying_keys
from lejepa.architectures import family_of


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def views_of(record: dict) -> tuple[int, int]:
    """(global, local) views: the paper's V counts views that are all global (Table 7's ResNet-50); runs
    with local crops are another curve, not the same V."""
    views = (record.get("spec") or {}).get("views") or {}
    return int(views.get("global_views", 0)), int(views.get("local_views", 0))


def views_label(views: tuple[int, int]) -> str:
    return f"V = {views[0]}" if views[1] == 0 else f"V = {views[0]} global + {views[1]} local"


@data_figure("fig8", "Linear-probe accuracy over lambda and the number of views",
             "Accuracy against lambda, one curve per number of views V (runs with local crops apart) (paper Fig. 8 and "
             "Table 7; ResNet-50 on ImageNet-100 there).", manifest="paper/table7")
def fig8(records: list[dict]) -> Drawn:
    runs = [r for r in finished(records) if (r.get("spec") or {}).get("method", {}).get("lamb") is not None]
    probe = probe_of(runs)
    runs = [r for r in runs if probe_accuracy(r, probe) is not None]
    if not runs:
        raise SkipFigure("no finished run has method.lamb and a probe accuracy")
    # one curve point is a mean over seeds only: every other swept setting (lr, epochs, ...) is held at the
    # values of the largest group
    held = [k for k in varying_keys([describe(r) for r in runs], [])
            if k != "spec.method.lamb" and not k.startswith("spec.views.")]
    runs, group = largest_group(runs, ("dataset", "method", "arch", "pretrain_epochs", *held))
    cells: dict[tuple[tuple[int, int], float], list[dict]] = {}
    for r in runs:
        cells.setdefault((views_of(r), float(r["spec"]["method"]["lamb"])), []).append(r)
    if len({lamb for _, lamb in cells}) < 2:
        raise SkipFigure(f"needs at least two values of method.lamb among comparable runs ({group})")
    fig, (ax,) = new_figure(width=6.0, height=4.5)
    parts, matched = [], 0
    for index, views in enumerate(sorted({v for v, _ in cells})):
        colour = f"C{index % 10}"
        lambdas = sorted(lamb for v, lamb in cells if v == views)
        stats = [_mean_std([probe_accuracy(r, probe) * 100 for r in cells[(views, lamb)]]) for lamb in lambdas]
        ax.errorbar(lambdas, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", capsize=3,
                    color=colour, label=views_label(views))
        paper = [(lamb, paper_value(describe(cells[(views, lamb)][0]))) for lamb in lambdas]
        paper = [(lamb, value) for lamb, value in paper if value is not None]
        if paper:
            matched += len(paper)
            ax.plot(*zip(*paper), linestyle="--", marker="o", markerfacecolor="none", color=colour,
                    label=f"{views_label(views)}, paper (Table 7)")
        best = int(np.argmax([m for m, _ in stats]))
        parts.append(f"{views_label(views)}: best {stats[best][0]:.2f} % at lambda {lambdas[best]:g} over "
                     f"{lambdas[0]:g}-{lambdas[-1]:g}")
    ax.set_xscale("log")
    ax.set_xlabel("λ")
    ax.set_ylabel(f"{probe_label(probe)} (%)")
    ax.legend(fontsize="x-small")
    ax.set_title(group, fontsize="small")
    paper_note = f"; {matched} cell(s) beside the paper's Table 7 number" if matched else ""
    return Drawn(fig, f"{source_text(runs, 'paper/table7')} {group}: " + "; ".join(parts) + paper_note + ".")


@data_figure("fig9", "One recipe across architectures",
             "Frozen-probe accuracy of LeJEPA pretrained with one recipe across timm architectures, each the "
             "best over the manifest's lambda x lr x weight-decay grid (the paper cross-validates lr and "
             "weight decay), sorted and coloured by family; dots are every run of the grid (paper Fig. 9; "
             "ImageNet-10 there).", manifest="paper/fig9")
def fig9(records: list[dict], families: dict[str, str] | None = None) -> Drawn:
    runs = finished(records)
    probe = probe_of(runs)
    runs = [r for r in runs if probe_accuracy(r, probe) is not None and not describe(r)["transfer_from"]]
    if not runs:
        raise SkipFigure("no finished in-domain run has a probe accuracy")
    runs, group = largest_group(runs, ("dataset", "method"))
    per_arch: dict[str, list[float]] = {}
    for r in runs:
        per_arch.setdefault(r["spec"]["model"]["arch"], []).append(probe_accuracy(r, probe) * 100)
    if len(per_arch) < 2:
        raise SkipFigure(f"needs at least two architectures evaluated on one dataset ({group})")
    family = {a: (families or {}).get(a) or family_of(a) for a in per_arch}
    archs = sorted(per_arch, key=lambda a: (-max(per_arch[a]), a))
    colours = {f: f"C{i % 10}" for i, f in enumerate(sorted(set(family.values()), key=str.lower))}
    fig, (ax,) = new_figure(width=max(5.0, 0.3 * len(archs) + 2.5), height=4.5)
    ax.bar(range(len(archs)), [max(per_arch[a]) for a in archs], color=[colours[family[a]] for a in archs])
    for x, arch in enumerate(archs):
        ax.scatter([x] * len(per_arch[arch]), per_arch[arch], color="k", s=6, zorder=3)
    ax.set_xticks(range(len(archs)), archs, rotation=75, ha="right", fontsize="x-small")
    ax.set_ylabel(f"{probe_label(probe)} (%), best over the grid")
    low = min(min(v) for v in per_arch.values())
    ax.set_ylim(max(0.0, low - 5), 100)
    ax.legend(handles=[Patch(color=c, label=f) for f, c in colours.items()], fontsize="x-small", title="family")
    ax.set_title(group, fontsize="small")
    top, bottom = archs[0], archs[-1]
    caption = (f"{source_text(runs, 'paper/fig9')} {group}: {len(archs)} architectures of {len(colours)} "
               f"families; best-over-grid accuracy from {max(per_arch[bottom]):.2f} % ({bottom}) to "
               f"{max(per_arch[top]):.2f} % ({top}); the grid's best is chosen on the test accuracy, as a "
               "cross-validation over lr and weight decay reports it.")
    return Drawn(fig, caption)


ALL = "all"


def _shots_curve(runs: list[dict], probe: str) -> dict[int | str, tuple[float, float]]:
    """{shots or 'all': (mean, std over seeds)} of one backbone's runs, in percent."""
    per_shots: dict[int | str, list[float]] = {}
    for r in runs:
        for shots, (mean, _std) in few_shot_accuracies(r).items():
            per_shots.setdefault(shots, []).append(mean * 100)
        full = probe_accuracy(r, probe)
        if full is not None:
            per_shots.setdefault(ALL, []).append(full * 100)
    return {k: _mean_std(v) for k, v in per_shots.items()}


@data_figure("fig12", "Galaxy10 accuracy by samples per class",
             "In-domain LeJEPA's frozen linear probe on Galaxy10 by number of labelled samples per class, one "
             "curve per backbone, 'all' at the right; the paper's frozen numbers (Table 3) as open markers "
             "where the run matches them, and its frozen frontier models (DINOv2, DINOv3) dotted (paper "
             "Fig. 12 and Table 3).", manifest="paper/table3")
def fig12(records: list[dict]) -> Drawn:
    runs = [r for r in finished(records) if few_shot_accuracies(r)]
    if not runs:
        raise SkipFigure("no finished run has evaluation.few_shot (set eval.few_shot, e.g. [1, 10, 100])")
    by_dataset: dict[str, list[dict]] = {}
    for r in runs:
        by_dataset.setdefault(r["spec"]["data"]["name"], []).append(r)
    fig, axes = panels(len(by_dataset), width=5.0, height=4.2)
    parts = []
    for ax, (dataset, group) in zip(axes, sorted(by_dataset.items())):
        probe = "linear"
        all_shots = sorted({s for r in group for s in few_shot_accuracies(r)})
        all_x = all_shots[-1] * 10  # 'all' one decade right of the largest few-shot setting
        for index, arch in enumerate(sorted({r["spec"]["model"]["arch"] for r in group})):
            members = [r for r in group if r["spec"]["model"]["arch"] == arch]
            curve = _shots_curve(members, probe)
            keys = [k for k in [*all_shots, ALL] if k in curve]
            xs = [all_x if k == ALL else k for k in keys]
            colour = f"C{index % 10}"
            ax.errorbar(xs, [curve[k][0] for k in keys], yerr=[curve[k][1] for k in keys], marker="o",
                        capsize=3, color=colour, label=f"{arch} (n = {len(members)})")
            row = describe(members[0])
            paper = [(all_x if k == ALL else k, paper_value(row, None if k == ALL else k)) for k in keys]
            paper = [(x, v) for x, v in paper if v is not None]
            if paper:
                ax.plot(*zip(*paper), linestyle="none", marker="o", markerfacecolor="none", markersize=9,
                        color=colour, label=f"{arch}, paper (Table 3, frozen)")
            parts.append(f"{dataset} {arch}: " + ", ".join(
                f"{k}: {curve[k][0]:.1f} %" for k in keys))
        for label, values in sorted(frontier_curves(dataset).items()):
            keys = [k for k in [*all_shots, None] if k in values]
            ax.plot([all_x if k is None else k for k in keys], [values[k] for k in keys], linestyle=":",
                    color="0.4", marker="s", markersize=3, label=f"{label}, paper (frozen, transfer)")
        ax.set_xscale("log")
        ax.set_xticks([*all_shots, all_x], [*map(str, all_shots), ALL])
        ax.set_xlabel("labelled samples per class")
        ax.set_ylabel(f"{probe_label('linear')} (%)")
        ax.legend(fontsize="x-small")
        ax.set_title(dataset, fontsize="small")
    return Drawn(fig, f"{source_text(runs, 'paper/table3')} " + "; ".join(parts) + ".")
