"""SIGReg: Sketched Isotropic Gaussian Regularisation (LeJEPA paper, Section 4 and Algorithm 1; docs/sigreg.md).

Embeddings Z (N x D) are projected on K random unit directions; each 1-D projection is compared with
the standard normal through the Epps-Pulley statistic

    T = N * integral |ecf_N(t) - phi(t)|^2 w(t) dt,   phi(t) = w(t) = exp(-t^2 / 2),

integrated by the trapezoid rule on [0, t_max] and doubled (the integrand is even). SIGReg is the
mean of T over the K slices.

`epps_pulley_direct` is the definition written out (it materialises an N x K x knots tensor).
`sigreg` computes the same numbers without that tensor: the knots are evenly spaced, t_j = j dt, so
exp(i t_j x) is the j-th power of the phasor exp(i dt x): one complex multiply per knot instead of a
cosine and a sine. The backward pass recomputes the powers (Horner's rule) instead of storing them, and
both passes walk the slices in chunks small enough to stay in cache. Memory is O(N K), time
O(N K (D + knots)).
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist

from lejepa.distributed import world_size
from lejepa.seeds import slice_generator

# Complex elements per chunk of slices: about 2 MiB on the CPU, so a chunk's few buffers stay in L2/L3
# (at N = 2048, K = 1024 on a 2-core EPYC, one thread: 1.2-1.6x less CPU time and 1.7-1.9x less peak memory
# than one whole-tensor chunk; benchmarks/RESULTS.md). A GPU wants few, large kernels instead. Many small
# operations do cost more where OpenMP threads spin on oversubscribed cores (RESULTS.md, two threads).
CHUNK_ELEMENTS = {"cpu": 2**18}
DEFAULT_CHUNK_ELEMENTS = 2**24


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
    generator = slice_generator(seed, step)
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


def _slice_chunks(x: torch.Tensor):
    """Column ranges of x (B, N, K) sized so that one chunk's complex buffers stay in cache."""
    budget = CHUNK_ELEMENTS.get(x.device.type, DEFAULT_CHUNK_ELEMENTS)
    width = max(1, budget // max(1, x.shape[0] * x.shape[1]))
    return [slice(start, start + width) for start in range(0, x.shape[-1], width)]


def _phasor(x: torch.Tensor, dt: float) -> torch.Tensor:
    # torch.polar is about 2.5x slower than this on the CPU (no vectorised kernel).
    theta = x * dt
    return torch.complex(torch.cos(theta), torch.sin(theta))


class _EppsPulley(torch.autograd.Function):
    """Epps-Pulley per slice for x (B, N, K), with the ecf sums added over all ranks."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, t_max: float, knots: int) -> torch.Tensor:
        t, weights, dt = quadrature(t_max, knots, device=x.device)
        t, weights = t.to(x.dtype), weights.to(x.dtype)
        batch, samples, slices = x.shape
        # sums[b, j, k] = sum_n exp(i t_j x[b, n, k]): real part the cosines, imaginary part the sines.
        sums = torch.empty((batch, knots, slices), dtype=x.dtype.to_complex(), device=x.device)
        sums[:, 0] = samples
        for cols in _slice_chunks(x):
            step = _phasor(x[..., cols], dt)
            power = step.clone()
            chunk_sums = sums.new_empty((knots, batch, step.shape[-1]))
            for j in range(1, knots):
                if j > 1:
                    power.mul_(step)  # exp(i j dt x): error grows only linearly in j (|step| = 1)
                torch.sum(power, 1, out=chunk_sums[j])
            sums[:, 1:, cols] = chunk_sums[1:].transpose(0, 1)
        world = world_size()
        n = samples * world  # every rank holds the same number of samples (the sampler shards evenly)
        if world > 1:
            dist.all_reduce(torch.view_as_real(sums))  # global-batch sums: the one-process statistic
        mean = sums / n
        cos_error = mean.real - torch.exp(-0.5 * t**2).unsqueeze(-1)
        mean_sin = mean.imag
        statistic = n * (weights.unsqueeze(-1) * (cos_error**2 + mean_sin**2)).sum(-2)
        ctx.save_for_backward(x, cos_error, mean_sin, t, weights)
        ctx.dt, ctx.world = dt, world
        return statistic

    @staticmethod
    def backward(ctx, grad_statistic: torch.Tensor):
        x, cos_error, mean_sin, t, weights = ctx.saved_tensors
        # dT/dx_m = sum_j 2 w_j t_j (S_j cos(t_j x_m) - (C_j - phi_j) sin(t_j x_m))
        #         = Re sum_j c_j exp(i t_j x_m)  with  c_j = 2 w_j t_j (S_j + i (C_j - phi_j)).
        # Every rank's loss is the global statistic and DDP averages gradients over ranks, so each rank's
        # share is scaled by the world size (what an autograd-aware all-reduce of the sums would give).
        scale = (2 * ctx.world) * (weights * t).unsqueeze(-1) * grad_statistic.unsqueeze(-2)  # (B, knots, K)
        coef = torch.complex(scale * mean_sin, scale * cos_error).unsqueeze(2)  # (B, knots, 1, K)
        grad_x = torch.empty_like(x)
        for cols in _slice_chunks(x):
            step = _phasor(x[..., cols], ctx.dt)
            c = coef[..., cols]
            # Horner: sum_{j>=1} c_j step^j = step (c_1 + step (c_2 + ... + step c_{J-1})).
            acc = c[:, -1].expand_as(step).contiguous()
            for j in range(c.shape[1] - 2, 0, -1):
                torch.addcmul(c[:, j], acc, step, out=acc)
            grad_x[..., cols] = (acc * step).real
        return grad_x, None, None


def sigreg(
    z: torch.Tensor, directions: torch.Tensor, t_max: float = 3.0, knots: int = 17
) -> torch.Tensor:
    """SIGReg of embeddings z (N x D, or V x N x D for V views sharing the directions): the mean over
    slices (and views) of the Epps-Pulley statistic, computed in float32 even under autocast."""
    # autocast off (SIGReg's sums need float32); the meta device (shape checks) has no autocast to turn off
    no_autocast = (torch.autocast(device_type=z.device.type, enabled=False)
                   if torch.amp.is_autocast_available(z.device.type) else contextlib.nullcontext())
    with no_autocast:
        dtype = torch.promote_types(z.dtype, torch.float32)  # float64 stays float64 (tests, gradcheck)
        projections = z.to(dtype) @ directions.to(dtype)
        batched = projections.reshape(-1, *projections.shape[-2:])
        return _EppsPulley.apply(batched, float(t_max), int(knots)).mean()


class SIGReg(torch.nn.Module):
    """SIGReg with its slice directions redrawn every step from (seed, step)."""

    def __init__(self, num_slices: int = 1024, knots: int = 17, t_max: float = 3.0, seed: int = 0):
        super().__init__()
        self.num_slices, self.knots, self.t_max, self.seed = num_slices, knots, t_max, seed

    def forward(self, z: torch.Tensor, step: int) -> torch.Tensor:
        directions = random_directions(z.shape[-1], self.num_slices, self.seed, step, device=z.device)
        return sigreg(z, directions, self.t_max, self.knots)
