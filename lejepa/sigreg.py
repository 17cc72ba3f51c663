"""SIGReg: Sketched Isotropic Gaussian Regularisation (LeJEPA paper, section 4; DESIGN.md section 2).

Embeddings Z (N x D) are projected on K random unit directions; each 1-D projection is compared with
the standard normal through the Epps-Pulley statistic

    T = N * integral |ecf_N(t) - phi(t)|^2 w(t) dt,   phi(t) = w(t) = exp(-t^2 / 2),

integrated by the trapezoid rule on [0, t_max] and doubled (the integrand is even). SIGReg is the
mean of T over the K slices.

`epps_pulley_direct` is the definition written out (it materialises an N x K x knots tensor).
`sigreg` computes the same numbers without that tensor: the knots are evenly spaced, so
cos(j dt x) and sin(j dt x) follow from cos(dt x) and sin(dt x) by the angle-addition recurrence, and
the backward pass recomputes them instead of storing them. Memory is O(N K), time O(N K (D + knots)).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def quadrature(t_max: float = 3.0, knots: int = 17, device=None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Knots t_j = j * dt on [0, t_max], the doubled trapezoid weights times the window phi(t_j), and dt."""
    if knots < 2:
        raise ValueError(f"SIGReg needs at least 2 integration knots, got {knots}")
    t = torch.linspace(0.0, t_max, knots, dtype=torch.float64, device=device)
    dt = t_max / (knots - 1)
    weights = torch.full_like(t, 2.0 * dt)
    weights[0] = weights[-1] = dt
    return t, weights * torch.exp(-0.5 * t**2), dt


def random_directions(dim: int, num_slices: int, seed: int, step: int, device=None) -> torch.Tensor:
    """K unit-norm directions (D x K), redrawn every step; the same (seed, step) gives the same directions
    on every rank, which distributed SIGReg needs."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed) * 1_000_003 + int(step))
    directions = torch.randn(dim, num_slices, generator=generator)
    directions = directions / directions.norm(dim=0, keepdim=True)
    return directions.to(device)


def epps_pulley_direct(x: torch.Tensor, t_max: float = 3.0, knots: int = 17) -> torch.Tensor:
    """Reference Epps-Pulley statistic per slice for samples x (..., N, K): the formula, term by term."""
    t, weights, _ = quadrature(t_max, knots, device=x.device)
    t, weights = t.to(x.dtype), weights.to(x.dtype)
    tx = x.unsqueeze(-1) * t  # (..., N, K, knots)
    error = (torch.cos(tx).mean(-3) - torch.exp(-0.5 * t**2)) ** 2 + torch.sin(tx).mean(-3) ** 2
    return x.shape[-2] * (error * weights).sum(-1)


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _trig_powers(x: torch.Tensor, dt: float, knots: int):
    """Yield (j, cos(j dt x), sin(j dt x)) for j = 0..knots-1 by the angle-addition recurrence."""
    cos_step, sin_step = torch.cos(dt * x), torch.sin(dt * x)
    cos_j, sin_j = torch.ones_like(x), torch.zeros_like(x)
    for j in range(knots):
        yield j, cos_j, sin_j
        cos_j, sin_j = cos_j * cos_step - sin_j * sin_step, sin_j * cos_step + cos_j * sin_step


class _EppsPulley(torch.autograd.Function):
    """Epps-Pulley per slice for x (..., N, K), with the ecf means averaged over all ranks."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, t_max: float, knots: int) -> torch.Tensor:
        t, weights, dt = quadrature(t_max, knots, device=x.device)
        t, weights = t.to(x.dtype), weights.to(x.dtype)
        sums = x.new_empty((2, *x.shape[:-2], knots, x.shape[-1]))
        for j, cos_j, sin_j in _trig_powers(x, dt, knots):
            sums[0, ..., j, :] = cos_j.sum(-2)
            sums[1, ..., j, :] = sin_j.sum(-2)
        world = _world_size()
        n = x.shape[-2] * world  # every rank holds the same number of samples (DistributedSampler pads)
        if world > 1:
            dist.all_reduce(sums)  # sums of cos/sin over the global batch: the one-process statistic
        mean_cos, mean_sin = sums[0] / n, sums[1] / n
        cos_error = mean_cos - torch.exp(-0.5 * t**2).unsqueeze(-1)
        statistic = n * (weights.unsqueeze(-1) * (cos_error**2 + mean_sin**2)).sum(-2)
        ctx.save_for_backward(x, cos_error, mean_sin, t, weights)
        ctx.dt, ctx.knots, ctx.world = dt, knots, world
        return statistic

    @staticmethod
    def backward(ctx, grad_statistic: torch.Tensor):
        x, cos_error, mean_sin, t, weights = ctx.saved_tensors
        # dT/dx_m = sum_j 2 w_j t_j (S_j cos(t_j x_m) - (C_j - phi_j) sin(t_j x_m)). Every rank's loss
        # is the global statistic and DDP averages gradients over ranks, so each rank's share is scaled by
        # the world size (what an autograd-aware all-reduce of the sums would give).
        scale = (2 * ctx.world) * (weights * t).unsqueeze(-1) * grad_statistic.unsqueeze(-2)  # (..., knots, K)
        cos_coef, sin_coef = scale * mean_sin, scale * cos_error
        grad_x = torch.zeros_like(x)
        for j, cos_j, sin_j in _trig_powers(x, ctx.dt, ctx.knots):
            grad_x += cos_coef[..., j, None, :] * cos_j - sin_coef[..., j, None, :] * sin_j
        return grad_x, None, None


def sigreg(
    z: torch.Tensor, directions: torch.Tensor, t_max: float = 3.0, knots: int = 17
) -> torch.Tensor:
    """SIGReg of embeddings z (N x D, or V x N x D for V views sharing the directions): the mean over
    slices (and views) of the Epps-Pulley statistic, computed in float32 even under autocast."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        projections = z.float() @ directions.float()
        return _EppsPulley.apply(projections, float(t_max), int(knots)).mean()


class SIGReg(torch.nn.Module):
    """SIGReg with its slice directions redrawn every step from (seed, step)."""

    def __init__(self, num_slices: int = 1024, knots: int = 17, t_max: float = 3.0, seed: int = 0):
        super().__init__()
        self.num_slices, self.knots, self.t_max, self.seed = num_slices, knots, t_max, seed

    def forward(self, z: torch.Tensor, step: int) -> torch.Tensor:
        directions = random_directions(z.shape[-1], self.num_slices, self.seed, step, device=z.device)
        return sigreg(z, directions, self.t_max, self.knots)
