"""Architecture figures: accuracy per architecture by family, in-domain pretraining vs transfer."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from evaluation.figures.common import (
    SkipFigure,
    accuracy_key,
    accuracy_label,
    by_value,
    done,
    in_domain,
    in_domain_first,
    mean_std,
    most_common,
    new_figure,
    register_figure,
)
from lejepa.architectures import family_of


@register_figure("architecture_sweep")
def architecture_sweep(rows: list[dict], families: dict[str, str] | None = None) -> Figure:
    """Accuracy per architecture (mean ± std over seeds), bars coloured and ordered by family: one panel
    per dataset, one method (the paper's claim: LeJEPA trains across 60+ architectures untuned)."""
    metric = accuracy_key(rows)
    runs = in_domain(done(rows, metric))
    if not runs:
        raise SkipFigure(f"no finished in-domain run has {metric}")
    runs, caption = most_common(runs, ("method",))
    datasets = sorted({r["dataset"] for r in runs if len({x["arch"] for x in runs if x["dataset"] == r["dataset"]}) > 1})
    if not datasets:
        raise SkipFigure("needs at least two architectures evaluated on one dataset")
    families = families or {}  # labels to use instead of the curated list's (lejepa/architectures.py)
    family = {arch: families.get(arch) or family_of(arch) for arch in {r["arch"] for r in runs}}
    colours = {f: f"C{i % 10}" for i, f in enumerate(sorted(set(family.values()), key=str.lower))}

    fig, axes = new_figure(len(datasets), width=max(4.0, 0.45 * len(family) + 2), height=4.5)
    for ax, dataset in zip(axes, datasets):
        per_arch = by_value([r for r in runs if r["dataset"] == dataset], "arch", metric)
        archs = sorted(per_arch, key=lambda a: (family[a].lower(), a))
        stats = [mean_std(per_arch[a]) for a in archs]
        ax.bar(range(len(archs)), [m for m, _ in stats], yerr=[s for _, s in stats], capsize=2,
               color=[colours[family[a]] for a in archs])
        ax.set_xticks(range(len(archs)), archs, rotation=60, ha="right", fontsize="small")
        ax.set_ylabel(accuracy_label(metric))
        ax.set_title(dataset, fontsize="medium")
    axes[-1].legend(handles=[Patch(color=c, label=f) for f, c in colours.items()], fontsize="small",
                    title="family", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"{caption}: accuracy per architecture", fontsize="medium")
    return fig


# ---------------------------------------------------------------- 6. in-domain vs transfer

@register_figure("transfer_vs_in_domain")
def transfer_vs_in_domain(rows: list[dict]) -> Figure:
    """Per evaluated dataset: in-domain pretraining next to transfer from each larger source (the paper's
    small-data claim), one bar per architecture, so a bar never averages different backbones. Only
    datasets that have both kinds of run are drawn."""
    metric = accuracy_key(rows)
    runs = done(rows, metric)
    if not any(r["transfer_from"] for r in runs):
        raise SkipFigure("no finished transfer run (evaluation.transfer_from, or evaluation.dataset differing "
                         "from spec.data.name)")
    runs, caption = most_common(runs, ("method",))
    datasets = sorted(d for d in {r["dataset"] for r in runs}
                      if {bool(r["transfer_from"]) for r in runs if r["dataset"] == d} == {True, False})
    if not datasets:
        raise SkipFigure("no dataset has both an in-domain and a transfer run of the same method")
    bars = sorted({(r["transfer_from"], r["arch"]) for r in runs if r["dataset"] in datasets},
                  key=lambda bar: (in_domain_first(bar[0]), bar[1]))
    width = 0.8 / len(bars)

    fig, (ax,) = new_figure(width=max(5.0, 1.2 * len(datasets) + 2))
    for b, (source, arch) in enumerate(bars):
        xs, means, stds = [], [], []
        for d, dataset in enumerate(datasets):
            values = [r[metric] * 100 for r in runs
                      if r["dataset"] == dataset and r["transfer_from"] == source and r["arch"] == arch]
            if values:
                m, s = mean_std(values)
                xs.append(d + (b - (len(bars) - 1) / 2) * width)
                means.append(m)
                stds.append(s)
        where = "in-domain" if source is None else f"from {source}"
        ax.bar(xs, means, width, yerr=stds, capsize=2, label=f"{where} ({arch})")
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_ylabel(accuracy_label(metric))
    ax.legend(fontsize="small")
    ax.set_title(f"{caption}: in-domain pretraining vs transfer", fontsize="medium")
    return fig
