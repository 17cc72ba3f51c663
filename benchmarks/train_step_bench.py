"""Throughput of the full LeJEPA training step (docs/lejepa.md section 1), and SIGReg's share of it.

One step = every view through backbone and projector, the prediction loss and SIGReg, backward, AdamW.
Views are fixed random tensors of the right sizes (no data loading or augmentation is timed).

CPU (always): a small configuration (a quarter-width ResNet-18 at 32 px, 2 global + 6 local views,
batch 64, K = 1024 slices); images/s of the step, and SIGReg's forward+backward on the step's embeddings
timed on its own, interleaved with the steps, as a fraction of the step.

CUDA (when a GPU is visible; skipped otherwise): ViT-S/16 with the official README's views (2 x 224 px + 6 x 98 px),
bf16 autocast, without and with torch.compile: images/s, peak GPU memory, model FLOPs per step (counted
by torch.utils.flop_counter on one step: matmuls, convolutions, attention), MFU against the bf16 matmul
peak measured on the same GPU in the same run, and SIGReg's share.

    .venv/bin/python benchmarks/train_step_bench.py [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time

import torch

from lejepa.sigreg import SIGReg
from lejepa.spec import ModelSpec, RunSpec, TrainSpec, ViewSpec
from lejepa.train import build_method
from lejepa.views import view_sizes

CPU_SPEC = RunSpec(
    experiment="bench",
    method={"name": "lejepa", "lamb": 0.05, "num_slices": 1024},
    model=ModelSpec(arch="resnet18", timm_kwargs={"channels": [16, 32, 64, 128]}, proj_hidden=512, proj_dim=128),
    views=ViewSpec(global_views=2, local_views=6),
    train=TrainSpec(batch_size=64, lr=5e-4, weight_decay=5e-4),
)
CPU_IMAGE_SIZE = 32

GPU_SPEC = RunSpec(
    experiment="bench",
    method={"name": "lejepa", "lamb": 0.05, "num_slices": 1024},
    model=ModelSpec(arch="vit_small_patch16_224", proj_hidden=2048, proj_dim=128),
    views=ViewSpec(global_views=2, local_views=6, global_size=224, local_size=98),
    train=TrainSpec(batch_size=128, lr=5e-4, weight_decay=5e-2),
)
GPU_IMAGE_SIZE = 224


def _views(spec: RunSpec, image_size: int, device) -> list[torch.Tensor]:
    global_size, local_size = view_sizes(spec.views, image_size)
    g = torch.Generator().manual_seed(0)
    sizes = [global_size] * spec.views.global_views + [local_size] * spec.views.local_views
    return [torch.randn(spec.train.batch_size, 3, s, s, generator=g).to(device) for s in sizes]


class Stepper:
    """One LeJEPA training step of `spec`, optionally compiled, in bf16 autocast on CUDA."""

    def __init__(self, spec: RunSpec, image_size: int, device: torch.device, compile_model: bool = False):
        self.method = build_method(spec, image_size).to(device)
        self.method.train()
        self.model = torch.compile(self.method) if compile_model else self.method
        self.optimizer = torch.optim.AdamW(self.method.parameters(), lr=spec.train.lr,
                                           weight_decay=spec.train.weight_decay)
        self.views, self.device, self.step_index = _views(spec, image_size, device), device, 0
        self.bf16 = device.type == "cuda"

    def __call__(self) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss, _ = self.model(self.views, self.step_index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step_index += 1
        return loss.detach()

    def embeddings(self) -> torch.Tensor:
        """z as the loss sees it, (V, B, proj_dim), detached: SIGReg's input for timing it alone."""
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.method.embed_views(self.views, self.method.projector).float()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def measure(spec: RunSpec, image_size: int, device: torch.device, steps: int, warmup: int,
            compile_model: bool = False) -> dict:
    stepper = Stepper(spec, image_size, device, compile_model)
    options = spec.method
    sigreg = SIGReg(options["num_slices"], seed=spec.seed)
    z = stepper.embeddings().requires_grad_(True)

    def sigreg_step():
        z.grad = None
        sigreg(z, stepper.step_index).backward()

    for _ in range(warmup):  # compilation, allocator and kernel-selection warm-up
        stepper()
        sigreg_step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step_times, sigreg_times = [], []
    for _ in range(steps):  # interleaved, so that both see the same machine
        step_times.append(_timed(stepper, device))
        sigreg_times.append(_timed(sigreg_step, device))
    step_s, sigreg_s = statistics.median(step_times), statistics.median(sigreg_times)
    result = {
        "images_per_second": spec.train.batch_size / step_s,
        "step_ms": 1e3 * step_s,
        "sigreg_ms": 1e3 * sigreg_s,
        "sigreg_share": sigreg_s / step_s,
        "embeddings": list(z.shape),
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return result


def step_flops(spec: RunSpec, image_size: int, device: torch.device) -> int:
    """Model FLOPs of one step (forward + backward) as torch's flop counter counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    stepper = Stepper(spec, image_size, device)
    stepper()  # build lazily created state first
    counter = FlopCounterMode(display=False)
    with counter:
        stepper()
    return counter.get_total_flops()


def bf16_matmul_peak(device: torch.device, n: int = 8192, iterations: int = 50) -> float:
    """Measured dense bf16 matmul throughput (FLOP/s): the denominator of MFU."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    best = 0.0
    for _ in range(3):
        elapsed = _timed(lambda: [a @ b for _ in range(iterations)], device)
        best = max(best, 2 * n**3 * iterations / elapsed)
    return best


def run_cpu(args) -> dict:
    torch.set_num_threads(args.threads)
    spec = dataclasses.replace(CPU_SPEC, train=dataclasses.replace(CPU_SPEC.train, batch_size=args.cpu_batch))
    result = measure(spec, CPU_IMAGE_SIZE, torch.device("cpu"), args.steps, args.warmup)
    result.update(config=f"{spec.model.arch} {spec.model.timm_kwargs}, {CPU_IMAGE_SIZE} px, "
                  f"views {spec.views.global_views}+{spec.views.local_views}, batch {spec.train.batch_size}, "
                  f"K={spec.method['num_slices']}, fp32, threads {args.threads}")
    return result


def run_gpu(args) -> dict | None:
    if not torch.cuda.is_available():
        return None
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    spec = dataclasses.replace(GPU_SPEC, train=dataclasses.replace(GPU_SPEC.train, batch_size=args.gpu_batch))
    peak = bf16_matmul_peak(device)
    flops = step_flops(spec, GPU_IMAGE_SIZE, device)
    rows = {}
    for compiled in (False, True):
        row = measure(spec, GPU_IMAGE_SIZE, device, args.steps, args.warmup + (5 if compiled else 0), compiled)
        row["mfu"] = flops / (row["step_ms"] / 1e3) / peak
        rows["torch.compile" if compiled else "eager"] = row
        torch.cuda.empty_cache()
    return {"device": torch.cuda.get_device_name(device), "bf16_matmul_peak_tflops": peak / 1e12,
            "step_tflop": flops / 1e12, "config": f"{spec.model.arch}, views 2x224 + 6x98, batch "
            f"{spec.train.batch_size}, K={spec.method['num_slices']}, bf16 autocast", "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads")
    parser.add_argument("--cpu-batch", type=int, default=64)
    parser.add_argument("--gpu-batch", type=int, default=128)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, torch {torch.__version__}, load average {os.getloadavg()}")
    report: dict = {}
    if not args.skip_cpu:
        cpu = report["cpu"] = run_cpu(args)
        print(f"CPU: {cpu['config']}\n  {cpu['images_per_second']:.1f} images/s, step {cpu['step_ms']:.0f} ms, "
              f"SIGReg fwd+bwd {cpu['sigreg_ms']:.1f} ms on z {cpu['embeddings']} = {100 * cpu['sigreg_share']:.1f}% "
              "of the step")
    gpu = report["cuda"] = run_gpu(args)
    if gpu is None:
        print("CUDA: no GPU visible, GPU part skipped")
    else:
        print(f"CUDA: {gpu['device']}, {gpu['config']}; measured bf16 matmul peak "
              f"{gpu['bf16_matmul_peak_tflops']:.0f} TFLOP/s; {gpu['step_tflop']:.2f} TFLOP per step")
        print("| mode | images/s | step ms | MFU | SIGReg ms | SIGReg share | peak GiB |\n|---|---:|---:|---:|---:|---:|---:|")
        for mode, row in gpu["rows"].items():
            print(f"| {mode} | {row['images_per_second']:.0f} | {row['step_ms']:.1f} | {100 * row['mfu']:.1f}% | "
                  f"{row['sigreg_ms']:.2f} | {100 * row['sigreg_share']:.1f}% | {row['peak_memory_gib']:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
