"""Figs. 6 and 16: gradient descent on the samples themselves under each statistic (paper section 4.3,
"Empirical Validation on Synthetic Data").

N samples of a D-dimensional standard Gaussian have their first two coordinates replaced by the "X" of
Fig. 5; the samples are the parameters, and each of the six statistics of univariate.STATISTICS, averaged
over M directions redrawn every step (the (SIGReg) definition with that test), is minimised. The paper
states N = 100 and (D, M) = (1024, 10) for Fig. 6, (128, 10), (128, 100), (1024, 100) for Fig. 16; it does
not state the optimiser, learning rate or number of steps: Adam, lr 0.01, 500 steps are assumed (Adam
because the six statistics differ in scale by orders of magnitude and Adam's step does not).

How Gaussian the X's plane ended up is measured by a statistic none of the six optimise: BHEP (appendix F)
of coordinates 1-2 against N(0, I_2); coordinates 3-4, Gaussian from the start, give its noise floor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from evaluation.paper_figures import univariate
from evaluation.paper_figures.registry import Drawn, new_figure, theory_figure
from evaluation.paper_figures.samples import bhep_to_standard_normal, embedded_x, random_unit_directions

PAPER_FIG16 = ((128, 10), (128, 100), (1024, 100))
# Not in the paper: a dimension at which 500 steps let the directions see the X's plane often enough.
SUITE_ROW = (16, 64)


def descend(z0: torch.Tensor, name: str, directions: int, steps: int, lr: float, seed: int) -> torch.Tensor:
    """Minimise the sliced statistic `name` over the samples, M directions redrawn each step."""
    z = z0.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        loss = univariate.sliced(name, z, random_unit_directions(z.shape[1], directions, generator))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return z.detach()


def descent_run(samples: int, dim: int, directions: int, steps: int, lr: float, seed: int) -> dict:
    """The starting samples and, per statistic, the samples after descent and the BHEP errors of the X's
    plane (coordinates 1-2) and of a Gaussian plane (3-4)."""
    start = embedded_x(samples, dim, seed)
    finals = {"original": start}
    finals.update({name: descend(start, name, directions, steps, lr, seed) for name in univariate.STATISTICS})
    return {name: {"samples": z.numpy(), "x_error": bhep_to_standard_normal(z.numpy()[:, :2]),
                   "gaussian_error": bhep_to_standard_normal(z.numpy()[:, 2:4])} for name, z in finals.items()}


def _draw(configs: list[tuple[int, int]], samples: int, steps: int, lr: float, seed: int, title: str):
    names = ["original", *univariate.STATISTICS]
    fig, axes = new_figure(2 * len(configs), len(names), width=2.1, height=2.1)
    runs = {}
    for row, (dim, directions) in enumerate(configs):
        run = descent_run(samples, dim, directions, steps, lr, seed)
        runs[(dim, directions)] = run
        for col, name in enumerate(names):
            z = run[name]["samples"]
            for pair, (a, b) in enumerate(((0, 1), (2, 3))):
                ax = axes[(2 * row + pair) * len(names) + col]
                ax.scatter(z[:, a], z[:, b], s=3, alpha=0.6, color="tab:red" if pair == 0 else "tab:blue")
                ax.set(xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), xticks=[], yticks=[], aspect="equal")
                error = run[name]["x_error" if pair == 0 else "gaussian_error"]
                label = "original" if name == "original" else univariate.label(name)
                ax.set_title(f"{label}\nBHEP {error:.2f}" if pair == 0 else f"BHEP {error:.2f}", fontsize=7)
                if col == 0:
                    ax.set_ylabel(f"D={dim}, M={directions}\ndims {a + 1}-{b + 1}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig, runs


def _comparison(run: dict) -> str:
    ep, vc = run["epps_pulley"]["x_error"], run["vcreg"]["x_error"]
    verdict = ("Epps-Pulley unfolds the X where VCReg cannot" if ep < 0.7 * vc else
               "no clear separation: random directions see little of the X's plane here")
    return (f"Epps-Pulley {ep:.2f}, VCReg {vc:.2f}, best other "
            f"{min(run[n]['x_error'] for n in univariate.STATISTICS if n != 'vcreg'):.2f}, from "
            f"{run['original']['x_error']:.2f} (Gaussian plane {run['original']['gaussian_error']:.2f}): {verdict}")


@theory_figure(
    "fig6", "Gradient descent on the samples under each statistic (D = 1024, M = 10)",
    "N samples of a 1024-dimensional Gaussian with an X in coordinates 1-2 are moved by gradient descent "
    "on each sliced statistic, 10 directions redrawn every step; the paper reports that SIGReg finds the "
    "degenerate plane and unfolds it (paper Fig. 6).")
def fig6(out_dir: Path | None = None, samples: int = 100, dim: int = 1024, directions: int = 10,
         steps: int = 500, lr: float = 0.01, seed: int = 0) -> Drawn:
    fig, runs = _draw([(dim, directions)], samples, steps, lr, seed,
                      f"Descent on N = {samples} samples under each statistic, D = {dim}, M = {directions} "
                      f"(paper Fig. 6; BHEP of the plane against N(0, I), lower is more Gaussian)")
    caption = (f"BHEP of the X's plane after {steps} Adam steps (lr {lr}, assumed) at D = {dim}, "
               f"M = {directions}, N = {samples}: {_comparison(runs[(dim, directions)])}. The paper reports "
               "that SIGReg unfolds it at this setting; Fig. 16's D = 16 row shows the mechanism.")
    return Drawn(fig, caption)


@theory_figure(
    "fig16", "Gradient descent on the samples, more dimensions and directions",
    "Fig. 6 repeated at (D, M) = (128, 10), (128, 100), (1024, 100), plus a row the suite adds at D = 16, "
    "M = 64 (paper Fig. 16).")
def fig16(out_dir: Path | None = None, samples: int = 100, configs: tuple = (*PAPER_FIG16, SUITE_ROW),
          steps: int = 500, lr: float = 0.01, seed: int = 0) -> Drawn:
    configs = [tuple(c) for c in configs]
    fig, runs = _draw(configs, samples, steps, lr, seed,
                      f"Descent on N = {samples} samples under each statistic (paper Fig. 16; the D = 16 row is "
                      "the suite's addition)")
    parts = [f"D = {d}, M = {m}: {_comparison(runs[(d, m)])}" for d, m in configs]
    caption = (f"BHEP of the X's plane after {steps} Adam steps (lr {lr}, assumed), N = {samples}. "
               + "; ".join(parts) + ".")
    return Drawn(fig, caption)


def x_errors(fig) -> dict[str, np.ndarray]:
    """Read back from a drawn Fig. 6/16 the X-plane BHEP per statistic (one value per configuration row)."""
    names = ["original", *univariate.STATISTICS]
    errors = {name: [] for name in names}
    for i, ax in enumerate(fig.axes):
        row, col = divmod(i, len(names))
        if row % 2 == 0:
            errors[names[col]].append(float(ax.get_title().rsplit("BHEP ", 1)[1]))
    return {name: np.asarray(values) for name, values in errors.items()}
