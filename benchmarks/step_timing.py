"""Timing pieces of benchmarks/gpu_smoke.py: the bf16 matmul peak (MFU's denominator) and one LeJEPA
training step on fixed random views, with SIGReg timed alone on the step's embeddings."""

from __future__ import annotations

import statistics
import time

import torch

from lejepa.methods import build_method
from lejepa.sigreg import SIGReg
from lejepa.spec import RunSpec


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def bf16_matmul_peak(device: torch.device, n: int, iterations: int = 50) -> float:
    """Measured dense bf16 matmul throughput in FLOP/s: the best of three timed runs of n x n products."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(3):
        elapsed = timed(lambda: [a @ b for _ in range(iterations)], device)
        best = max(best, 2 * n**3 * iterations / elapsed)
    return best


class Stepper:
    """One LeJEPA training step on fixed random views: forward in bf16 autocast, backward, AdamW."""

    def __init__(self, spec: RunSpec, image_size: int, device: torch.device, bf16: bool, compile_backend: str | None):
        self.method = build_method(spec, image_size).to(device)
        self.method.train()
        self.model = torch.compile(self.method, backend=compile_backend) if compile_backend else self.method
        self.optimizer = torch.optim.AdamW(self.method.parameters(), lr=spec.train.lr,
                                           weight_decay=spec.train.weight_decay, fused=device.type == "cuda")
        g = torch.Generator().manual_seed(0)
        sizes = [spec.views.global_size] * spec.views.global_views + [spec.views.local_size] * spec.views.local_views
        self.views = [torch.randn(spec.train.batch_size, 3, s, s, generator=g).to(device) for s in sizes]
        self.device, self.bf16, self.step_index = device, bf16, 0

    def __call__(self) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss, _ = self.model(self.views, self.step_index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step_index += 1

    @torch.no_grad()
    def embeddings(self) -> torch.Tensor:
        """z as the loss sees it, (V, B, proj_dim): SIGReg's input, to time SIGReg alone."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.method.embed_views(self.views, self.method.projector).float()


def step_flops(stepper: Stepper) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        stepper()
    return counter.get_total_flops()


def measure_step(spec: RunSpec, image_size: int, device: torch.device, bf16: bool, compile_backend: str | None,
                 steps: int, warmup: int) -> dict:
    """Time `steps` steps after `warmup` (the first one timed on its own: compilation, allocator, kernel
    selection), SIGReg alone interleaved with them, the FLOPs of one eager step, the peak GPU memory."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    stepper = Stepper(spec, image_size, device, bf16, compile_backend)
    first_step_s = timed(stepper, device)  # compilation, allocator and kernel selection
    for _ in range(warmup - 1):
        stepper()
    flops = step_flops(stepper) if compile_backend is None else None  # counted on the eager step (same model FLOPs)
    sigreg = SIGReg(spec.method["num_slices"], seed=spec.seed)
    z = stepper.embeddings().requires_grad_(True)

    def sigreg_step():
        z.grad = None
        sigreg(z, stepper.step_index).backward()

    sigreg_step()
    step_times, sigreg_times = [], []
    for _ in range(steps):  # interleaved, so both see the same machine state
        step_times.append(timed(stepper, device))
        sigreg_times.append(timed(sigreg_step, device))
    step_s, sigreg_s = statistics.median(step_times), statistics.median(sigreg_times)
    row = {"images_per_second": spec.train.batch_size / step_s, "step_ms": 1e3 * step_s,
           "sigreg_ms": 1e3 * sigreg_s, "sigreg_share": sigreg_s / step_s, "first_step_s": first_step_s,
           "step_flops": flops}
    if device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row
