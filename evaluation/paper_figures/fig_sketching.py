"""Figs. 2 and 5: SIGReg as directional 1-D tests (paper section 4.1-4.2, Definition 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.stats import chi2, norm

from evaluation.paper_figures import univariate
from evaluation.paper_figures.registry import Drawn, new_figure, theory_figure
from evaluation.paper_figures.samples import half_circle_directions, x_distribution

COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
           "tab:olive", "tab:cyan", "tab:gray"]


def _density_line(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A histogram density evaluated on grid (bin centres), so the plotted line is the data's own."""
    edges = np.concatenate([grid - (grid[1] - grid[0]) / 2, grid[-1:] + (grid[1] - grid[0]) / 2])
    counts, _ = np.histogram(values, bins=edges, density=True)
    return counts


def three_clusters(samples: int, seed: int) -> np.ndarray:
    """A clustered 2-D embedding (three Gaussian blobs on a triangle), standardised per coordinate: the
    non-Gaussian density of the schematic (assumed; the paper draws an arbitrary one)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-1.6, -0.9], [1.6, -0.9], [0.0, 1.8]])
    z = centres[rng.integers(0, 3, samples)] + 0.35 * rng.standard_normal((samples, 2))
    return (z - z.mean(0)) / z.std(0)


@theory_figure(
    "fig2", "SIGReg: directional tests of an embedding density",
    "A 2-D embedding density, its projections on a few unit directions and the 1-D Epps-Pulley test of each "
    "projection against N(0, 1); SIGReg is their mean (paper Fig. 2, Definition 2).")
def fig2(out_dir: Path | None = None, samples: int = 2000, directions: int = 4, seed: int = 0) -> Drawn:
    z = three_clusters(samples, seed)
    gaussian = np.random.default_rng(seed + 1).standard_normal((samples, 2))
    angles, vectors = half_circle_directions(directions)
    projections, reference = z @ vectors, gaussian @ vectors
    ep = univariate.epps_pulley(projections).numpy()
    ep_gaussian = univariate.epps_pulley(reference).numpy()

    fig, (scatter, ridge, bars) = new_figure(1, 3, width=4.2)
    scatter.scatter(z[:, 0], z[:, 1], s=2, alpha=0.3, color="0.4")
    for i, (dx, dy) in enumerate(vectors.T):
        scatter.annotate("", xy=(2.6 * dx, 2.6 * dy), xytext=(0, 0),
                         arrowprops={"arrowstyle": "->", "color": COLOURS[i], "lw": 2})
    scatter.set(aspect="equal", xlim=(-3, 3), ylim=(-3, 3), title=f"embeddings (N = {samples}) and directions")
    grid = np.linspace(-4, 4, 81)
    for i in range(directions):
        offset = 0.6 * (directions - 1 - i)
        ridge.plot(grid, offset + _density_line(projections[:, i], grid), color=COLOURS[i],
                   label=f"{angles[i]:.0f}°")
        ridge.plot(grid, offset + norm.pdf(grid), color="black", lw=0.8)
    ridge.set(title="projected densities (black: N(0, 1))", xlabel="⟨z, a⟩", yticks=[])
    ridge.legend(fontsize="small", title="direction")
    x = np.arange(directions)
    bars.bar(x - 0.2, ep, width=0.4, color=COLOURS[:directions], label="clustered embedding")
    bars.bar(x + 0.2, ep_gaussian, width=0.4, color="0.7", label="isotropic Gaussian sample")
    bars.set(xticks=x, xticklabels=[f"{a:.0f}°" for a in angles], yscale="log", ylabel="Epps-Pulley statistic",
             title=f"SIGReg = {ep.mean():.1f} vs {ep_gaussian.mean():.2f} for N(0, I)")
    bars.legend(fontsize="small")
    fig.suptitle("SIGReg: 1-D tests along directions (paper Fig. 2)")
    caption = (f"SIGReg (mean Epps-Pulley over {directions} directions) of a clustered 2-D embedding is "
               f"{ep.mean():.1f}, against {ep_gaussian.mean():.2f} for an isotropic Gaussian sample of the "
               f"same size (N = {samples}); the clustered density is assumed, the paper draws an arbitrary one.")
    return Drawn(fig, caption)


def directional_statistics(z: np.ndarray, directions: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each statistic of univariate.STATISTICS along each half-circle direction: (angles, {name: values})."""
    angles, vectors = half_circle_directions(directions)
    projections = torch.from_numpy(z @ vectors)
    return angles, {name: fn(projections).numpy() for name, (_, fn) in univariate.STATISTICS.items()}


def min_max(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


@theory_figure(
    "fig5", "The X distribution: six univariate statistics along 10 directions",
    "A 2-D 'X' with standard-normal marginals and identity covariance, projected on 10 directions of the half "
    "circle; each of six statistics (VCReg, extended Jarque-Bera, Cramér-von Mises, Watson, "
    "Anderson-Darling, Epps-Pulley), min-max normalised over the directions, spikes where the projection "
    "sees the degenerate arms, except the moment test of mean and variance alone (paper Fig. 5).")
def fig5(out_dir: Path | None = None, samples: int = 2000, directions: int = 10, seed: int = 0) -> Drawn:
    z = x_distribution(samples, seed)
    angles, values = directional_statistics(z, directions)
    _, vectors = half_circle_directions(directions)

    fig, (marginals, scatter, ridge, lines) = new_figure(1, 4, width=3.8)
    grid = np.linspace(-4, 4, 41)
    for column, colour, name in ((0, "tab:blue", "x1"), (1, "tab:red", "x2")):
        marginals.plot(grid, _density_line(z[:, column], grid), color=colour, label=name)
    marginals.plot(grid, norm.pdf(grid), color="black", lw=0.8, label="N(0, 1)")
    marginals.set(title="marginals", xlabel="value")
    marginals.legend(fontsize="small")
    scatter.scatter(z[:, 0], z[:, 1], s=1, alpha=0.3, color="0.4")
    for i, (dx, dy) in enumerate(vectors.T):
        scatter.plot([-3.5 * dx, 3.5 * dx], [-3.5 * dy, 3.5 * dy], color=COLOURS[i], lw=1)
    scatter.set(aspect="equal", xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), title=f"X (N = {samples}), directions")
    fine = np.linspace(-4, 4, 81)
    for i in range(directions):
        ridge.plot(fine, 0.5 * (directions - 1 - i) + _density_line(z @ vectors[:, i], fine), color=COLOURS[i])
    ridge.set(title="p(⟨x, a_i⟩), i = 0 (top) .. 9", yticks=[], ylim=(-0.2, 0.5 * directions + 2))
    for name, raw in values.items():
        lines.plot(angles, min_max(raw), marker="o", ms=3, label=f"{univariate.label(name)} (max {raw.max():.3g})")
    lines.set(xlabel="direction angle (degrees)", ylabel="statistic, min-max normalised",
              title="statistic per direction", xticks=angles[::2])
    for arm in (45, 135):
        lines.axvline(arm, color="0.8", lw=4, zorder=0)
    lines.legend(fontsize="x-small")
    fig.suptitle("The X distribution seen by six univariate statistics (paper Fig. 5; grey: the X's arms)")
    ep, vc = values["epps_pulley"], values["vcreg"]
    caption = (f"Along the {directions} directions, Epps-Pulley peaks at {angles[ep.argmax()]:.0f}° next to an "
               f"arm of the X, {ep.max() / ep[np.isin(angles, [0, 90])].max():.0f} times its value along the axes, "
               f"while VCReg, which tests only mean and variance (both exact for the X), stays at most "
               f"{vc.max():.2f} on every direction, below chi-square(2)'s 5% critical value "
               f"{chi2.ppf(0.95, 2):.2f}: it cannot see the X (N = {samples}; arm thickness 0.1 assumed).")
    return Drawn(fig, caption)
