"""Report figures, each a function of result records only (DESIGN.md section 1): results/<exp>/figures/.

Every figure is registered by name, returns its matplotlib Figure (so tests can read the plotted data)
and, given an output folder, saves <name>.png and <name>.pdf. When the records lack what a figure needs
it returns None and tells `on_skip` why; write_figures collects those reasons for report.md.

Figures are drawn on Agg canvases created per figure, never through pyplot's global state, so a report
leaks no open figures and needs no display.

Record fields read beyond evaluation/record.py's schema, when present:
  evaluation.embedding_spectrum   eigenvalues of the covariance of the frozen features, descending
  evaluation.transfer_from        see evaluation/report.py
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy.stats import spearmanr

from evaluation.references import arch_family, load_paper_numbers
from evaluation.report import describe, sort_key, varying_keys

log = logging.getLogger(__name__)

ARCHITECTURES_YAML = Path(__file__).resolve().parents[1] / "experiments" / "architectures.yaml"
TOY_RECORD = "sigreg_toy.json"

LINEAR = "evaluation.linear_top1"
KNN = "evaluation.knn_top1@20"
LAMBDA = "spec.method.lamb"


class SkipFigure(Exception):
    """The records do not hold what this figure needs; the message says what is missing."""


SkipHandler = Callable[[str, str], None]
FIGURES: dict[str, Callable[..., Figure | None]] = {}


def _log_skip(name: str, reason: str) -> None:
    log.info("figure %s skipped: %s", name, reason)


def save_figure(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def register_figure(name: str):
    """Wrap draw(rows, **options) -> Figure into fn(records, out_dir=None, on_skip=None, **options)."""

    def decorate(draw: Callable[..., Figure]) -> Callable[..., Figure | None]:
        def figure(records: list[dict], out_dir: Path | None = None, on_skip: SkipHandler | None = None,
                   **options: Any) -> Figure | None:
            try:
                fig = draw([describe(r) for r in records], **options)
            except SkipFigure as skip:
                (_log_skip if on_skip is None else on_skip)(name, str(skip))
                return None
            if out_dir is not None:
                save_figure(fig, Path(out_dir), name)
            return fig

        figure.__name__, figure.__doc__ = draw.__name__, draw.__doc__
        FIGURES[name] = figure
        return figure

    return decorate


# ---------------------------------------------------------------- shared helpers

def new_figure(panels: int = 1, width: float = 5.0, height: float = 4.0) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * panels, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, panels, i + 1) for i in range(panels)]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _done(rows: list[dict], *required: str) -> list[dict]:
    return [r for r in rows if r["status"] == "done" and all(_finite(r.get(k)) for k in required)]


def _in_domain(rows: list[dict]) -> list[dict]:
    """Sweeps compare pretraining settings on one dataset; a transfer run belongs to figure 6 instead."""
    return [r for r in rows if not r["transfer_from"]]


def accuracy_key(rows: list[dict]) -> str:
    """The linear probe when any finished run has it, else kNN@20."""
    return LINEAR if _done(rows, LINEAR) else KNN


def accuracy_label(key: str) -> str:
    return "linear probe top-1 (%)" if key == LINEAR else "kNN@20 top-1 (%)"


def _most_common(rows: list[dict], keys: tuple[str, ...]) -> tuple[list[dict], str]:
    """Keep the rows of the most common combination of `keys`, so one plot never mixes datasets or
    methods; returns them and a caption naming the combination."""
    counts = Counter(tuple(r.get(k) for k in keys) for r in rows)
    chosen = max(counts, key=lambda combo: (counts[combo], "lejepa" in combo))  # ties: the paper's method
    kept = [r for r in rows if tuple(r.get(k) for k in keys) == chosen]
    caption = ", ".join(str(v) for v in chosen if v is not None)
    if len(counts) > 1:
        caption += f" (most runs; {len(counts) - 1} other combination(s) not shown)"
    return kept, caption


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _by_value(rows: list[dict], key: str, value_key: str) -> dict[Any, list[float]]:
    out: dict[Any, list[float]] = {}
    for r in rows:
        out.setdefault(r[key], []).append(float(r[value_key]) * 100)
    return dict(sorted(out.items()))


def _paper_rho_text() -> str:
    """'reported |ρ|: up to 0.99, above 0.94' from paper_numbers.yaml (the tables' source too)."""
    entries = [e for e in load_paper_numbers()["entries"] if e.get("metric") == "spearman_rho"]
    words = {"up_to": "up to ", "above": "above ", "about": "about "}
    return "reported |ρ|: " + ", ".join(f"{words.get(e.get('qualifier'), '')}{e['value']:g}" for e in entries)


# ---------------------------------------------------------------- 1. training loss vs accuracy

@register_figure("loss_vs_accuracy")
def loss_vs_accuracy(rows: list[dict], min_runs: int = 3) -> Figure:
    """Final training loss against frozen linear accuracy across a sweep, with Spearman's rho (the paper
    reports the training loss predicting downstream accuracy). One method and dataset per plot: losses of
    different methods are not on one scale."""
    metric = accuracy_key(rows)
    runs = _in_domain(_done(rows, "pretrain.final_loss", metric))
    if not runs:
        raise SkipFigure(f"no finished run has both pretrain.final_loss and {metric}")
    runs, caption = _most_common(runs, ("method", "dataset"))
    if len(runs) < min_runs:
        raise SkipFigure(f"needs at least {min_runs} finished runs of one method and dataset with a final "
                         f"loss and {metric}; found {len(runs)}")
    loss = np.array([r["pretrain.final_loss"] for r in runs], dtype=float)
    accuracy = np.array([r[metric] * 100 for r in runs], dtype=float)
    rho = float(spearmanr(loss, accuracy).statistic)

    fig, (ax,) = new_figure(width=6.0, height=4.5)
    swept = _swept_key(runs)
    if swept:
        for value in sorted({r.get(swept) for r in runs}, key=sort_key):
            picked = [i for i, r in enumerate(runs) if r.get(swept) == value]
            ax.scatter(loss[picked], accuracy[picked], label=f"{swept.removeprefix('spec.')} = {value}")
    else:
        ax.scatter(loss, accuracy, label="runs")
    ax.legend(fontsize="small", title=_paper_rho_text(), title_fontsize="small")
    ax.set_xlabel("final training loss")
    ax.set_ylabel(accuracy_label(metric))
    ax.set_title(f"{caption}\nSpearman ρ = {rho:+.3f} (n = {len(runs)})", fontsize="medium")
    return fig


def _swept_key(rows: list[dict], within: tuple[str, ...] = (), max_values: int = 8) -> str | None:
    """The hyper-parameter with the most distinct values inside groups of `within` (a legend of at most
    max_values)."""
    keys = [k for k in varying_keys(rows, list(within)) if 1 < len({str(r.get(k)) for r in rows}) <= max_values]
    return max(keys, key=lambda k: len({str(r.get(k)) for r in rows}), default=None)


# ---------------------------------------------------------------- 2. stability over lambda x views

def views_of(row: dict) -> int | None:
    g, local = row.get("spec.views.global_views"), row.get("spec.views.local_views")
    return int(g) + int(local) if _finite(g) and _finite(local) else None


@register_figure("stability_heatmap")
def stability_heatmap(rows: list[dict]) -> Figure:
    """Accuracy over lambda x number of views (or x batch size when the views do not vary): the paper's
    claim is that LeJEPA is stable across these without tuning."""
    metric = accuracy_key(rows)
    runs = _in_domain(_done(rows, LAMBDA, metric))
    if not runs:
        raise SkipFigure(f"no finished run has {LAMBDA} and {metric} (set method.lamb in the manifest)")
    runs, caption = _most_common(runs, ("method", "dataset", "arch"))
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


# ---------------------------------------------------------------- 3. architecture sweep

def architecture_families(path: Path = ARCHITECTURES_YAML) -> dict[str, str]:
    """name -> family from experiments/architectures.yaml when it exists (else the prefix heuristic)."""
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return {a["name"]: a["family"] for a in data.get("architectures", []) if "name" in a and "family" in a}


@register_figure("architecture_sweep")
def architecture_sweep(rows: list[dict], families: dict[str, str] | None = None) -> Figure:
    """Accuracy per architecture (mean ± std over seeds), bars coloured and ordered by family: one panel
    per dataset, one method (the paper's claim: LeJEPA trains across 60+ architectures untuned)."""
    metric = accuracy_key(rows)
    runs = _in_domain(_done(rows, metric))
    if not runs:
        raise SkipFigure(f"no finished in-domain run has {metric}")
    runs, caption = _most_common(runs, ("method",))
    datasets = sorted({r["dataset"] for r in runs if len({x["arch"] for x in runs if x["dataset"] == r["dataset"]}) > 1})
    if not datasets:
        raise SkipFigure("needs at least two architectures evaluated on one dataset")
    families = architecture_families() if families is None else families
    family_of = {arch: families.get(arch) or arch_family(arch) for arch in {r["arch"] for r in runs}}
    colours = {f: f"C{i % 10}" for i, f in enumerate(sorted(set(family_of.values())))}

    fig, axes = new_figure(len(datasets), width=max(4.0, 0.45 * len(family_of) + 2), height=4.5)
    for ax, dataset in zip(axes, datasets):
        per_arch = _by_value([r for r in runs if r["dataset"] == dataset], "arch", metric)
        archs = sorted(per_arch, key=lambda a: (family_of[a], a))
        stats = [_mean_std(per_arch[a]) for a in archs]
        ax.bar(range(len(archs)), [m for m, _ in stats], yerr=[s for _, s in stats], capsize=2,
               color=[colours[family_of[a]] for a in archs])
        ax.set_xticks(range(len(archs)), archs, rotation=60, ha="right", fontsize="small")
        ax.set_ylabel(accuracy_label(metric))
        ax.set_title(dataset, fontsize="medium")
    axes[-1].legend(handles=[Patch(color=c, label=f) for f, c in colours.items()], fontsize="small",
                    title="family", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"{caption}: accuracy per architecture", fontsize="medium")
    return fig


# ---------------------------------------------------------------- 5. slices and knots ablation

ABLATIONS = (("spec.method.num_slices", "number of slices K", True), ("spec.method.knots", "integration knots", False))


@register_figure("sigreg_ablation")
def sigreg_ablation(rows: list[dict]) -> Figure:
    """Accuracy against the number of SIGReg slices and of quadrature knots. Each panel holds the other
    key at its most common value, so a panel shows one factor at a time."""
    metric = accuracy_key(rows)
    runs = _in_domain(_done(rows, metric))
    runs = [r for r in runs if any(_finite(r.get(k)) for k, _, _ in ABLATIONS)]
    if not runs:
        raise SkipFigure(f"no finished run has method.num_slices or method.knots and {metric}")
    runs, caption = _most_common(runs, ("method", "dataset", "arch"))
    panels = []
    for key, label, log_x in ABLATIONS:
        others = [k for k, _, _ in ABLATIONS if k != key]
        held = {k: Counter(r.get(k) for r in runs).most_common(1)[0][0] for k in others}
        subset = [r for r in runs if _finite(r.get(key)) and all(r.get(k) == v for k, v in held.items())]
        if len({r[key] for r in subset}) > 1:
            panels.append((key, label, log_x, subset, held))
    if not panels:
        raise SkipFigure("neither method.num_slices nor method.knots takes two values among comparable runs")

    fig, axes = new_figure(len(panels))
    for ax, (key, label, log_x, subset, held) in zip(axes, panels):
        values = _by_value(subset, key, metric)
        stats = [_mean_std(v) for v in values.values()]
        ax.errorbar(list(values), [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", capsize=3)
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
        ax.set_ylabel(accuracy_label(metric))
        fixed = ", ".join(f"{k.removeprefix('spec.method.')} = {v}" for k, v in held.items() if v is not None)
        ax.set_title(f"{label}" + (f" ({fixed})" if fixed else ""), fontsize="medium")
    fig.suptitle(f"{caption}: SIGReg ablation", fontsize="medium")
    return fig


# ---------------------------------------------------------------- 6. in-domain vs transfer

def _in_domain_first(source: str | None) -> tuple[bool, str]:
    """Sort key for a run's transfer source: in-domain (None) before every source, sources by name."""
    return source is not None, str(source)


@register_figure("transfer_vs_in_domain")
def transfer_vs_in_domain(rows: list[dict]) -> Figure:
    """Per evaluated dataset: in-domain pretraining next to transfer from each larger source (the paper's
    small-data claim), one bar per architecture, so a bar never averages different backbones. Only
    datasets that have both kinds of run are drawn."""
    metric = accuracy_key(rows)
    runs = _done(rows, metric)
    if not any(r["transfer_from"] for r in runs):
        raise SkipFigure("no finished transfer run (evaluation.transfer_from, or evaluation.dataset differing "
                         "from spec.data.name)")
    runs, caption = _most_common(runs, ("method",))
    datasets = sorted(d for d in {r["dataset"] for r in runs}
                      if {bool(r["transfer_from"]) for r in runs if r["dataset"] == d} == {True, False})
    if not datasets:
        raise SkipFigure("no dataset has both an in-domain and a transfer run of the same method")
    bars = sorted({(r["transfer_from"], r["arch"]) for r in runs if r["dataset"] in datasets},
                  key=lambda bar: (_in_domain_first(bar[0]), bar[1]))
    width = 0.8 / len(bars)

    fig, (ax,) = new_figure(width=max(5.0, 1.2 * len(datasets) + 2))
    for b, (source, arch) in enumerate(bars):
        xs, means, stds = [], [], []
        for d, dataset in enumerate(datasets):
            values = [r[metric] * 100 for r in runs
                      if r["dataset"] == dataset and r["transfer_from"] == source and r["arch"] == arch]
            if values:
                m, s = _mean_std(values)
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


# ---------------------------------------------------------------- 7. embedding spectrum

SPECTRUM = "evaluation.embedding_spectrum"


def effective_rank(eigenvalues: np.ndarray) -> float:
    """exp(entropy) of the normalised spectrum: D for an isotropic embedding, 1 for a collapsed one."""
    p = np.clip(eigenvalues, 0, None) / np.clip(eigenvalues, 0, None).sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def _line_keys(rows: list[dict], within: tuple[str, ...], max_lines: int = 8) -> list[str]:
    """Hyper-parameters that split a group of `within` into lines: all that vary, when their settings make
    at most max_lines lines (an ablation along separate axes); else the most-swept one (a full grid)."""
    varying = varying_keys(rows, list(within))
    if len({tuple(str(r.get(k)) for k in (*within, *varying)) for r in rows}) <= max_lines:
        return varying
    swept = _swept_key(rows, within)
    return [swept] if swept else []


def _line_order(method: str, arch: str, source: str | None, *values: Any) -> list:
    """Method, architecture, in-domain before transferred, then the settings in numeric order."""
    return [sort_key(method), sort_key(arch), _in_domain_first(source), *map(sort_key, values)]


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


# ---------------------------------------------------------------- 4. SIGReg on a 2-D toy

def sigreg_toy_figure(toy: dict, out_dir: Path | None = None, on_skip: SkipHandler | None = None) -> Figure | None:
    """Samples of a non-Gaussian 2-D distribution before and after minimising SIGReg over the samples
    themselves, and the sliced statistic per step: SIGReg alone pulls a distribution to N(0, I)."""
    needed = ("samples_before", "samples_after", "statistic")
    missing = [k for k in needed if not toy.get(k)]
    if toy.get("kind") != "sigreg_toy" or missing:
        skip = _log_skip if on_skip is None else on_skip
        skip("sigreg_toy", f"not a SIGReg toy record (kind sigreg_toy with {', '.join(needed)})")
        return None
    before, after = np.asarray(toy["samples_before"]), np.asarray(toy["samples_after"])
    statistic = np.asarray(toy["statistic"], dtype=float)
    fig, axes = new_figure(3, width=4.0, height=4.0)
    theta = np.linspace(0, 2 * np.pi, 200)
    limit = float(np.abs(np.concatenate([before, after])).max()) * 1.05
    for ax, samples, title in ((axes[0], before, "before"), (axes[1], after, "after")):
        fixed = toy.get(f"fixed_statistic_{title}")
        ax.scatter(samples[:, 0], samples[:, 1], s=4, alpha=0.6)
        for radius in (1, 2):
            ax.plot(radius * np.cos(theta), radius * np.sin(theta), "k--", lw=0.8)
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
        ax.set_aspect("equal")
        ax.set_title(f"{title} (N = {len(samples)})" + (f", SIGReg {fixed:.3g}" if _finite(fixed) else ""),
                     fontsize="medium")
    axes[2].plot(np.arange(len(statistic)), statistic)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("SIGReg (mean Epps-Pulley over slices)")
    config = toy.get("config", {})
    axes[2].set_title(f"K = {config.get('num_slices')} slices redrawn each step", fontsize="medium")
    fig.suptitle("SIGReg on a 2-D toy distribution (dashed: 1σ and 2σ of N(0, I))", fontsize="medium")
    if out_dir is not None:
        save_figure(fig, Path(out_dir), "sigreg_toy")
    return fig


def load_or_make_toy(out_dir: Path) -> dict:
    """The toy record cached next to the report; made once (a deterministic run of about a second)."""
    import json

    path = Path(out_dir) / TOY_RECORD
    if path.exists():
        return json.loads(path.read_text())
    from evaluation.sigreg_toy import run_toy, write_toy

    toy = run_toy()
    write_toy(toy, path)
    return toy


# ---------------------------------------------------------------- all of them

def figure_caption(fig: Figure) -> str:
    """The figure's titles on one line: what report.md says next to the file (e.g. figure 1's rho)."""
    titles = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
    return "; ".join(" ".join(t.split()) for t in titles if t.strip())


def write_figures(records: list[dict], out_dir: Path, toy: bool = True
                  ) -> tuple[list[Path], dict[str, str], dict[str, str]]:
    """Every applicable figure under out_dir/figures; returns the files, {figure: why it was skipped} and
    {figure: its caption}."""
    figure_dir = Path(out_dir) / "figures"
    skipped: dict[str, str] = {}

    def note(name: str, reason: str) -> None:
        skipped[name] = reason

    made = {name: draw(records, figure_dir, on_skip=note) for name, draw in FIGURES.items()}
    if toy:
        made["sigreg_toy"] = sigreg_toy_figure(load_or_make_toy(out_dir), figure_dir, on_skip=note)
    captions = {name: figure_caption(fig) for name, fig in made.items() if fig is not None}
    paths = [figure_dir / f"{name}.{ext}" for name in captions for ext in ("png", "pdf")]
    return paths, skipped, captions
