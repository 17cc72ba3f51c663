"""The suite's own SIGReg toy (not a figure of the paper): the regulariser alone, minimised over 2-D samples.

Start from a clearly non-Gaussian cloud (a shifted, noisy ring), treat the N points themselves as the
parameters and minimise lejepa.sigreg.SIGReg by gradient descent, its slice directions redrawn every
step. The run is
deterministic on the CPU. Its output is a record-like JSON (samples before and after, the statistic per
step, and a fixed-direction statistic before and after), so the figure is a function of that record.

`lejepa figures paper --only sigreg_toy --out DIR` draws it as the registry entry `sigreg_toy` (origin:
suite) and writes that record, DIR/sigreg_toy.json, next to the figure; it is reused while its
configuration is unchanged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from evaluation.paper_figures.registry import Drawn, new_figure, theory_figure
from lejepa.files import atomic_write_bytes
from lejepa.sigreg import SIGReg, random_directions, sigreg
from lejepa.threads import one_thread

TOY_SCHEMA = 1
# About a second on one CPU core.
DEFAULTS = {"seed": 0, "samples": 512, "steps": 100, "lr": 1.0, "num_slices": 32, "knots": 17, "t_max": 3.0,
            "ring_radius": 2.0, "ring_noise": 0.15, "shift": [1.0, -0.5], "eval_slices": 256}


def ring_samples(samples: int, radius: float, noise: float, shift: list[float], seed: int) -> torch.Tensor:
    """A noisy ring off the origin: wrong mean, wrong covariance and bimodal along every direction."""
    generator = torch.Generator().manual_seed(seed)
    angle = 2 * math.pi * torch.rand(samples, generator=generator)
    r = radius + noise * torch.randn(samples, generator=generator)
    return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1) + torch.tensor(shift)


def fixed_statistic(z: torch.Tensor, slices: int, knots: int, t_max: float) -> float:
    """SIGReg over one fixed, large set of directions, comparable between before and after."""
    directions = random_directions(z.shape[1], slices, seed=12345, step=0)
    return float(sigreg(z.detach(), directions, t_max, knots))


def run_toy(**overrides) -> dict:
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise KeyError(f"unknown toy option(s) {sorted(unknown)}; options: {sorted(DEFAULTS)}")
    config = {**DEFAULTS, **overrides}
    # The tensors are tiny: intra-op threads only add synchronisation, which on a busy machine made the
    # run ten times slower. One thread, restored afterwards.
    with one_thread():
        return _optimise(config)


def _optimise(config: dict) -> dict:
    torch.manual_seed(config["seed"])
    start = ring_samples(config["samples"], config["ring_radius"], config["ring_noise"], config["shift"],
                         config["seed"])
    z = start.clone().requires_grad_(True)
    regulariser = SIGReg(config["num_slices"], config["knots"], config["t_max"], seed=config["seed"])
    # Plain gradient descent: Adam's per-coordinate normalisation would move every point by about lr per
    # step, flinging the points whose gradient is tiny (far in the tails) away instead of leaving them.
    optimiser = torch.optim.SGD([z], lr=config["lr"])
    per_step = []
    for step in range(config["steps"]):
        loss = regulariser(z, step)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        per_step.append(float(loss.detach()))
    args = (config["eval_slices"], config["knots"], config["t_max"])
    return {
        "schema": TOY_SCHEMA, "kind": "sigreg_toy", "config": config,
        "samples_before": start.tolist(), "samples_after": z.detach().tolist(), "statistic": per_step,
        "fixed_statistic_before": fixed_statistic(start, *args),
        "fixed_statistic_after": fixed_statistic(z, *args),
        "environment": {"torch": torch.__version__},
    }


def write_toy(toy: dict, path: Path) -> Path:
    payload = json.dumps(toy).encode()
    atomic_write_bytes(Path(path), lambda f: f.write(payload))
    return Path(path)


TOY_RECORD = "sigreg_toy.json"


def load_or_run(out_dir: Path | None, **overrides) -> tuple[dict, tuple[Path, ...]]:
    """The toy record cached in out_dir (reused if its configuration matches), else a fresh run written
    there; also the cached file, if any."""
    config = {**DEFAULTS, **overrides}
    path = None if out_dir is None else Path(out_dir) / TOY_RECORD
    if path is not None and path.exists():
        cached = json.loads(path.read_text())
        if cached.get("kind") == "sigreg_toy" and cached.get("config") == json.loads(json.dumps(config)):
            return cached, (path,)
    toy = run_toy(**overrides)
    if path is None:
        return toy, ()
    return toy, (write_toy(toy, path),)


@theory_figure(
    "sigreg_toy", "SIGReg alone on a 2-D toy distribution", "A shifted noisy ring in 2-D, its points moved by "
    "gradient descent on SIGReg alone (directions redrawn every step): the cloud becomes N(0, I). The "
    "suite's own illustration, not a figure of the paper.", origin="suite")
def toy_figure(out_dir: Path | None = None, **overrides) -> Drawn:
    toy, files = load_or_run(out_dir, **overrides)
    before, after = np.asarray(toy["samples_before"]), np.asarray(toy["samples_after"])
    fig, axes = new_figure(1, 3, width=4.0, height=4.0)
    circle = np.linspace(0, 2 * np.pi, 200)
    limit = 1.05 * float(np.abs(np.concatenate([before, after])).max())
    for ax, samples, when in ((axes[0], before, "before"), (axes[1], after, "after")):
        ax.scatter(samples[:, 0], samples[:, 1], s=4, alpha=0.6)
        for radius in (1, 2):
            ax.plot(radius * np.cos(circle), radius * np.sin(circle), "k--", lw=0.8)
        ax.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal",
               title=f"{when} (N = {len(samples)}), SIGReg {toy[f'fixed_statistic_{when}']:.3g}")
    axes[2].plot(np.arange(len(toy["statistic"])), toy["statistic"])
    axes[2].set(yscale="log", xlabel="step", ylabel="SIGReg (mean Epps-Pulley over slices)",
                title=f"K = {toy['config']['num_slices']} slices redrawn each step")
    fig.suptitle("SIGReg alone on a 2-D toy (the suite's figure; dashed: 1σ and 2σ of N(0, I))")
    caption = (f"SIGReg over {toy['config']['eval_slices']} fixed directions falls from "
               f"{toy['fixed_statistic_before']:.3g} to {toy['fixed_statistic_after']:.3g} after "
               f"{toy['config']['steps']} gradient steps on the {len(before)} points themselves (the suite's "
               "own toy, not a figure of the paper).")
    return Drawn(fig, caption, files)

