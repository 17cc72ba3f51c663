"""Figs. 4, 7 and 15: how many directions SIGReg needs (paper section 4.3, Theorem 5).

Theorem 5 bounds the directional discrepancy left after matching |A| = M directions by
C(K, alpha) M^(-2 alpha / (K - 1)) times a Sobolev norm, with
C(K, alpha) = 2^(2 alpha) pi^((K-1)/2) Gamma(alpha + (K-1)/2) / ((K - 1) Gamma(alpha) Gamma((K-1)/2)).
Fig. 15 draws that factor, Fig. 4 draws densities on the sphere of growing smoothness alpha, and Fig. 7
measures the statistic over all directions after SIGReg on M fixed or redrawn directions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib import cm
from scipy.special import sph_harm_y

from evaluation.paper_figures.registry import Drawn, blank_figure, new_figure, theory_figure
from evaluation.paper_figures.samples import random_unit_directions
from lejepa.sigreg import sigreg


def log_bound(dim: int, alpha: float, directions: np.ndarray) -> np.ndarray:
    """natural log of C(K, alpha) M^(-2 alpha / (K - 1)) of Theorem 5, K = dim (lgamma: no overflow)."""
    k = dim - 1
    log_c = (2 * alpha * math.log(2) + k / 2 * math.log(math.pi) + math.lgamma(alpha + k / 2)
             - math.log(k) - math.lgamma(alpha) - math.lgamma(k / 2))
    return log_c - 2 * alpha / k * np.log(directions)


@theory_figure(
    "fig15", "Theorem 5's bound factor against the number of directions",
    "C(K, alpha) M^(-2 alpha/(K-1)) of Theorem 5 against M for K = 5 and smoothness alpha from 1 to 181: the "
    "smoother the density, the faster the bound falls with M (paper Fig. 15).")
def fig15(out_dir: Path | None = None, dim: int = 5, alphas: tuple = tuple(range(1, 182, 20)),
          max_directions: int = 200) -> Drawn:
    m = np.arange(2, max_directions + 1)
    fig, (ax,) = new_figure(1, 1, width=6, height=4.5)
    colours = cm.coolwarm(np.linspace(0, 1, len(alphas)))
    for alpha, colour in zip(alphas, colours):
        ax.plot(m, log_bound(dim, alpha, m) / math.log(10), color=colour, label=f"α = {alpha}")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="number of directions M", ylabel="log10 C(K, α) M^(-2α/(K-1))",
           title=f"Theorem 5's bound factor, K = {dim}")
    ax.legend(fontsize="x-small", ncol=2)
    top = alphas[-1]
    crossing = float(m[np.argmax(log_bound(dim, top, m) < 0)])
    caption = (f"For K = {dim}, every curve falls as M^(-2α/{dim - 1}); at M = {max_directions} the factor is "
               f"10^{log_bound(dim, alphas[0], m[-1:])[0] / math.log(10):.1f} for α = {alphas[0]} and "
               f"10^{log_bound(dim, top, m[-1:])[0] / math.log(10):.0f} for α = {top}, whose curve drops below 1 "
               f"from M = {crossing:.0f}.")
    return Drawn(fig, caption)


def sphere_grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    polar, azimuth = np.linspace(0, np.pi, rows), np.linspace(0, 2 * np.pi, cols)
    return np.meshgrid(polar, azimuth, indexing="ij")


def smooth_field(alpha: float, degree: int, polar: np.ndarray, azimuth: np.ndarray, seed: int) -> np.ndarray:
    """A random real function on S^2 with harmonic coefficients of degree l drawn N(0, (1 + l(l+1))^-(alpha+1)),
    so that its H^alpha norm sum_l (1 + l(l+1))^alpha |c_l|^2 just diverges logarithmically with the degree:
    smoothness about alpha. The same normal draws for every alpha (seeded)."""
    rng = np.random.default_rng(seed)
    field = np.zeros_like(polar)
    for ell in range(1, degree + 1):
        scale = (1 + ell * (ell + 1)) ** (-(alpha + 1) / 2)
        harmonics = sph_harm_y(ell, np.arange(ell + 1)[:, None, None], polar, azimuth)
        draws = rng.standard_normal((2, ell + 1))
        field += scale * (draws[0, 0] * harmonics[0].real
                          + math.sqrt(2) * (draws[0, 1:, None, None] * harmonics[1:].real
                                            + draws[1, 1:, None, None] * harmonics[1:].imag).sum(0))
    return field


def roughness(log_density: np.ndarray, polar: np.ndarray) -> float:
    """Mean gradient norm, per radian along the sphere, of a function on the (polar, azimuth) grid (away from
    the poles, where the azimuthal spacing vanishes)."""
    d_polar = np.diff(log_density, axis=0)[:, :-1] / (polar[1, 0] - polar[0, 0])
    d_azimuth = np.diff(log_density, axis=1)[:-1] / (2 * np.pi / (log_density.shape[1] - 1))
    d_azimuth = d_azimuth / np.sin(polar[:-1, :1] + (polar[1, 0] - polar[0, 0]) / 2)
    return float(np.sqrt(d_polar**2 + d_azimuth**2)[1:-1].mean())


@theory_figure(
    "fig4", "Densities on the sphere by Sobolev smoothness",
    "Random densities on the sphere S^2 with growing Sobolev smoothness alpha; the smoother the embedding "
    "density, the more each direction's test constrains its neighbours (paper Fig. 4, Theorem 5).")
def fig4(out_dir: Path | None = None, alphas: tuple = (0.5, 1.0, 2.0, 4.0), degree: int = 24, rows: int = 61,
         seed: int = 0) -> Drawn:
    polar, azimuth = sphere_grid(rows, 2 * rows - 1)
    fig = blank_figure(3.2 * len(alphas), 6.0)
    rough = {}
    for i, alpha in enumerate(alphas):
        field = smooth_field(alpha, degree, polar, azimuth, seed)
        log_density = 2.0 * field / field.std()  # p proportional to exp(2 f / std f): assumed contrast
        density = np.exp(log_density - log_density.max())
        rough[alpha] = roughness(log_density, polar)
        ax3d = fig.add_subplot(2, len(alphas), i + 1, projection="3d")
        step = max(1, rows // 30)
        p, a, d = polar[::step, ::step], azimuth[::step, ::step], density[::step, ::step]
        ax3d.plot_surface(np.sin(p) * np.cos(a), np.sin(p) * np.sin(a), np.cos(p), facecolors=cm.viridis(d),
                          rstride=1, cstride=1, linewidth=0, antialiased=False, shade=False)
        ax3d.set_axis_off()
        ax3d.set_box_aspect((1, 1, 1))
        ax3d.set_title(f"α = {alpha:g}", fontsize="medium")
        ax = fig.add_subplot(2, len(alphas), len(alphas) + i + 1)
        ax.imshow(density, extent=(0, 360, 180, 0), aspect="auto", cmap="viridis")
        ax.set(xlabel="azimuth (degrees)", ylabel="polar angle (degrees)",
               title=f"roughness {rough[alpha]:.2f} / rad")
        ax.title.set_fontsize("small")
    fig.suptitle("Densities on S^2 by Sobolev smoothness α (paper Fig. 4; top: sphere, bottom: map)")
    first, last = alphas[0], alphas[-1]
    caption = (f"Mean |∇ log p| over the sphere falls from {rough[first]:.2f} per radian at α = {first:g} to "
               f"{rough[last]:.2f} at α = {last:g} (random harmonics up to degree {degree}, same draws for "
               "every α; the paper's exact densities are not given).")
    return Drawn(fig, caption)


def start_samples(samples: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """An anisotropic, shifted Gaussian cloud (scales log-spaced 0.2 to 3, mean 0.5 per coordinate): wrong
    variance and mean along most directions (assumed starting point)."""
    scales = torch.logspace(math.log10(0.2), math.log10(3.0), dim, dtype=torch.float64)
    return torch.randn(samples, dim, generator=generator, dtype=torch.float64) * scales + 0.5


def final_statistic(directions: int, resample: bool, samples: int, dim: int, steps: int, lr: float,
                    eval_directions: int, seed: int) -> float:
    """SIGReg (Epps-Pulley) on M directions, fixed or redrawn each step, minimised over the samples by
    Adam; then the mean statistic over eval_directions fresh directions."""
    generator = torch.Generator().manual_seed(seed)
    z = start_samples(samples, dim, generator).requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    fixed = random_unit_directions(dim, directions, generator)
    for _ in range(steps):
        a = random_unit_directions(dim, directions, generator) if resample else fixed
        loss = sigreg(z, a)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    probe = random_unit_directions(dim, eval_directions, torch.Generator().manual_seed(seed + 99991))
    return float(sigreg(z.detach(), probe))


@theory_figure(
    "fig7", "Directional statistic after training: fixed vs resampled directions",
    "The expected Epps-Pulley statistic over all directions at the end of a small SIGReg training, against "
    "the number M of directions per step, kept fixed or redrawn every step: redrawing covers the sphere "
    "for free (paper Fig. 7).")
def fig7(out_dir: Path | None = None, counts: tuple = (4, 8, 16, 32, 64, 128, 256), samples: int = 512,
         dim: int = 64, steps: int = 300, lr: float = 0.01, eval_directions: int = 2048, seed: int = 0) -> Drawn:
    fig, (ax,) = new_figure(1, 1, width=5.5, height=4.2)
    values = {}
    for resample, colour in ((False, "tab:blue"), (True, "tab:green")):
        values[resample] = [final_statistic(m, resample, samples, dim, steps, lr, eval_directions, seed)
                            for m in counts]
        slope = np.polyfit(np.log10(counts), values[resample], 1)[0]
        ax.plot(counts, values[resample], marker="o", color=colour,
                label=f"{'resampled' if resample else 'fixed'} (slope {slope:.2f} per decade)")
    ax.set(xscale="log", yscale="log", xlabel="directions per step M",
           ylabel=f"E_a[Epps-Pulley] over {eval_directions} fresh directions",
           title=f"N = {samples}, D = {dim}, {steps} Adam steps")
    ax.legend(fontsize="small")
    fig.suptitle("SIGReg with fixed vs redrawn directions (paper Fig. 7)", fontsize="medium")
    caption = (f"After {steps} steps, the statistic over fresh directions is {values[True][0]:.2f} with "
               f"M = {counts[0]} redrawn directions against {values[False][0]:.1f} with {counts[0]} fixed ones, and "
               f"{values[False][-1]:.2f} with {counts[-1]} fixed ones (N = {samples}, D = {dim}, Adam lr {lr} and "
               "the anisotropic start assumed).")
    return Drawn(fig, caption)
