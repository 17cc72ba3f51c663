"""GPU smoke test and throughput table for LeJEPA training: one script, one GPU,
under 8 minutes.

Measured, in this order (cheap first; anything left when `--budget-s` runs out is listed as skipped):

1. the dense bf16 matmul peak of this GPU (the denominator of MFU);
2. views per second of the photometric half on the GPU (lejepa/view_pipeline.py's batched path, against
   torchvision v2 per image and kornia where installed: benchmarks/photometric_candidates.py), and a check
   that the side-stream prefetch (lejepa.view_pipeline.device_views) hands over the same views as a plain
   copy;
3. evaluation throughput: Backbone.features (the frozen-evaluation read-out) in bf16 autocast, images/s;
4. the LeJEPA training step for ViT-S/16 and ViT-L/14 at 16/32/64 images per GPU with the paper's views
   (2 x 224 + 6 x 98 px), bf16 autocast, AdamW (fused on CUDA), TF32 on: eager at every batch size, then
   torch.compile at `--compile-batches`. Per row: images/s, step time, MFU (model FLOPs of one step counted
   by torch.utils.flop_counter over the measured peak), SIGReg's forward + backward timed alone on the
   step's embeddings, interleaved with the steps, as a share of the step, peak memory, and the first
   step's time (compilation included).

Views are fixed random tensors (no loading in the step rows); time is the median over `--steps` steps
after `--warmup` steps, with the device synchronised around each.

    .venv/bin/python benchmarks/gpu_smoke.py --out gpu_smoke.md [--json gpu_smoke.json]
    .venv/bin/python benchmarks/gpu_smoke.py --dry-run --out smoke.md   # the code paths on the CPU, toy sizes
    .venv/bin/python benchmarks/gpu_smoke.py --dry-run --batches 2 --compile-batches 2 --out smoke.md
        # also the compiled step, traced by dynamo only (backend "eager"): slower

Without a GPU (and without --dry-run) it prints that nothing was measured and exits with status 0
without writing a table. Replaces benchmarks/train_step_bench.py (its GPU part had never run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import photometric_candidates
import torch
from step_timing import bf16_matmul_peak, measure_step, timed

from lejepa.methods import build_method
from lejepa.photometric import NUM_PARAMS, params_from_uniforms
from lejepa.spec import ModelSpec, RunSpec, TrainSpec, ViewSpec
from lejepa.view_pipeline import CropBatchViews, device_views

NO_GPU = ("gpu_smoke: no CUDA GPU is visible, nothing was measured and no table was written. Run it on a GPU "
          "machine, or pass --dry-run to exercise every code path on the CPU at toy sizes.")


@dataclass(frozen=True)
class Settings:
    models: tuple[tuple[str, str, dict], ...]  # (label, timm architecture, timm kwargs)
    image_size: int
    global_size: int
    local_size: int
    batches: tuple[int, ...]
    compile_batches: tuple[int, ...]
    steps: int
    warmup: int
    num_slices: int
    proj_hidden: int
    proj_dim: int
    view_batch: int  # images per batch in the views-per-second measurement
    eval_batch: int
    eval_iterations: int
    matmul_n: int
    compile_backend: str  # inductor on the GPU; the dry run traces with dynamo only ("eager"), in seconds


GPU = Settings(
    models=(("ViT-S/16", "vit_small_patch16_224", {}), ("ViT-L/14", "vit_large_patch14_224", {})),
    image_size=224, global_size=224, local_size=98, batches=(16, 32, 64), compile_batches=(64,), steps=10,
    warmup=3, num_slices=1024, proj_hidden=2048, proj_dim=128, view_batch=256, eval_batch=256,
    eval_iterations=10, matmul_n=8192, compile_backend="inductor",
)
DRY_RUN = Settings(
    models=(("tiny ViT", "vit_tiny_patch16_224", {"embed_dim": 32, "depth": 2, "num_heads": 2}),),
    image_size=32, global_size=32, local_size=16, batches=(2, 4), compile_batches=(), steps=2, warmup=2,
    num_slices=16, proj_hidden=32, proj_dim=8, view_batch=4, eval_batch=4, eval_iterations=2, matmul_n=128,
    compile_backend="eager",
)
VIEWS = {"global_views": 2, "local_views": 6}


def _spec(settings: Settings, arch: str, timm_kwargs: dict, batch: int) -> RunSpec:
    return RunSpec(
        experiment="gpu-smoke",
        method={"name": "lejepa", "lamb": 0.05, "num_slices": settings.num_slices},
        model=ModelSpec(arch=arch, timm_kwargs=timm_kwargs, proj_hidden=settings.proj_hidden,
                        proj_dim=settings.proj_dim),
        views=ViewSpec(**VIEWS, global_size=settings.global_size, local_size=settings.local_size),
        train=TrainSpec(batch_size=batch, lr=5e-4, weight_decay=5e-2),
    )


class Budget:
    """Start a measurement only if the time it is expected to need is left."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def allows(self, need_s: float) -> bool:
        return time.monotonic() + need_s < self.deadline


# Expected duration of one row on an H100 (ViT-L/14 at 64 images per GPU): build, warm-up, counted step,
# timed steps; compilation of the forward and backward graphs takes most of a compiled row's.
NEED_S = {"eager": 25, "torch.compile": 120, "eval": 15}


# --- 2. views per second ----------------------------------------------------------------------------------


def _crop_batch(settings: Settings, batch: int, device: torch.device, seed: int = 0):
    """Random uint8 crops (2 global + 6 local views) and their photometric draws, as the loader sends them."""
    g = torch.Generator().manual_seed(seed)
    sizes = [settings.global_size] * 2 + [settings.local_size] * 6
    crops = [torch.randint(0, 256, (batch, 3, s, s), dtype=torch.uint8, generator=g).to(device) for s in sizes]
    spec = ViewSpec(**VIEWS)
    params = params_from_uniforms(torch.rand(batch * 8, NUM_PARAMS, generator=g), spec).view(batch, 8, NUM_PARAMS)
    return crops, params.to(device)


def view_throughput(settings: Settings, device: torch.device, repeats: int) -> dict[str, dict | str]:
    crops, params = _crop_batch(settings, settings.view_batch, device)
    rows: dict[str, dict | str] = {}
    for name, candidate in photometric_candidates.candidates((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).items():
        if isinstance(candidate, str):
            rows[name] = candidate
            continue
        candidate(crops, params)  # warm-up (kernel selection, module set-up)
        seconds = statistics.median(timed(lambda c=candidate: c(crops, params), device) for _ in range(repeats))
        rows[name] = {"images_per_second": settings.view_batch / seconds,
                      "views_per_second": 8 * settings.view_batch / seconds}
    return rows


def prefetch_matches(settings: Settings, device: torch.device) -> bool:
    """device_views (a side-stream copy on CUDA) yields the views that a plain copy gives, batch for batch."""
    pipeline = CropBatchViews(ViewSpec(**VIEWS, global_size=settings.global_size, local_size=settings.local_size),
                              settings.image_size, (0.5,) * 3, (0.25,) * 3)
    cpu = torch.device("cpu")
    batches = [_crop_batch(settings, 4, cpu, seed) for seed in range(3)]
    if device.type == "cuda":
        batches = [([c.pin_memory() for c in crops], params.pin_memory()) for crops, params in batches]
    loader = [(batch, torch.zeros(4)) for batch in batches]
    got = {step: views for step, views, _labels in device_views(loader, pipeline, device, start_step=0)}
    for step, batch in enumerate(batches):
        expected = pipeline.views(pipeline.transfer(batch, device), step)
        if not all(torch.equal(a, b) for a, b in zip(got[step], expected)):
            return False
    return sorted(got) == list(range(len(batches)))


# --- 3. evaluation throughput -----------------------------------------------------------------------------


@torch.no_grad()
def eval_throughput(settings: Settings, arch: str, timm_kwargs: dict, device: torch.device, bf16: bool) -> float:
    """images/s of Backbone.features (frozen-evaluation features) on random images, bf16 autocast."""
    backbone = build_method(_spec(settings, arch, timm_kwargs, settings.eval_batch), settings.image_size).backbone
    backbone = backbone.to(device).eval()
    images = torch.randn(settings.eval_batch, 3, settings.image_size, settings.image_size, device=device)

    def extract():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            backbone.features(images)

    extract()
    seconds = statistics.median(timed(extract, device) for _ in range(settings.eval_iterations))
    return settings.eval_batch / seconds


# --- 4. the training step ---------------------------------------------------------------------------------


def step_rows(settings: Settings, device: torch.device, bf16: bool, peak: float, budget: Budget,
              rows: list[dict], on_row) -> None:
    """Measure the planned step rows into `rows`, calling on_row() after each (the table is rewritten)."""
    plan = [(label, arch, kwargs, batch, False) for label, arch, kwargs in settings.models for batch in settings.batches]
    plan += [(label, arch, kwargs, batch, True) for label, arch, kwargs in settings.models
             for batch in settings.compile_batches]
    flops_by_config: dict[tuple[str, int], int] = {}
    for label, arch, kwargs, batch, compiled in plan:
        row = {"model": label, "batch": batch, "mode": "torch.compile" if compiled else "eager"}
        if not budget.allows(NEED_S[row["mode"]]):
            rows.append({**row, "skipped": "time budget spent"})
            continue
        try:
            spec = _spec(settings, arch, kwargs, batch)
            backend = settings.compile_backend if compiled else None
            row.update(measure_step(spec, settings.image_size, device, bf16, backend, settings.steps, settings.warmup))
        except torch.cuda.OutOfMemoryError:
            rows.append({**row, "skipped": "out of GPU memory"})
            torch.cuda.empty_cache()
            on_row()
            continue
        flops = flops_by_config.setdefault((label, batch), row["step_flops"])
        row["mfu"] = flops / (row["step_ms"] / 1e3) / peak if flops else None
        rows.append(row)
        print(f"  {label} batch {batch} {row['mode']}: {row['images_per_second']:.0f} images/s", flush=True)
        on_row()


# --- report -----------------------------------------------------------------------------------------------


def _number(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown(report: dict) -> str:
    """The report as Markdown; sections not measured yet are left out (the file is rewritten as it goes)."""
    lines = [(f"GPU smoke ({report['mode']}): {report['device']}, torch {report['torch']}, {report['date']}; "
             f"measured bf16 matmul peak {report['peak_tflops']:.3g} TFLOP/s (n = {report['matmul_n']})."), ""]
    if "views" in report:
        lines += [f"Photometric views on the device, batch of {report['view_batch']} images x 8 views:", "",
                  "| implementation | images/s | views/s |", "|---|---:|---:|"]
        for name, row in report["views"].items():
            lines.append(f"| {name} | {row} | |" if isinstance(row, str) else
                         f"| {name} | {row['images_per_second']:.0f} | {row['views_per_second']:.0f} |")
        lines.append("")
    if "prefetch_matches" in report:
        lines += [f"Side-stream prefetch gives the same views as a plain copy: {report['prefetch_matches']}", ""]
    if "eval" in report:
        lines += [f"Evaluation features (Backbone.features, bf16 autocast, batch {report['eval_batch']}):", "",
                  "| model | images/s |", "|---|---:|"]
        lines += [f"| {label} | {value} |" if isinstance(value, str) else f"| {label} | {value:.0f} |"
                  for label, value in report["eval"].items()]
        lines.append("")
    if report.get("steps"):
        lines += ["Training step (LeJEPA, 2 global + 6 local views, fixed random views, bf16 autocast, AdamW):", "",
                  ("| model | images/GPU | mode | images/s | step ms | MFU | SIGReg ms | SIGReg share | peak GiB "
                  "| first step s |"),
                  "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row in report["steps"]:
            head = f"| {row['model']} | {row['batch']} | {row['mode']} |"
            if "skipped" in row:
                lines.append(f"{head} {row['skipped']} | | | | | | |")
                continue
            mfu = None if row.get("mfu") is None else 100 * row["mfu"]
            lines.append(f"{head} {row['images_per_second']:.1f} | {row['step_ms']:.1f} | {_number(mfu, '.1f')}% | "
                         f"{row['sigreg_ms']:.2f} | {100 * row['sigreg_share']:.1f}% | "
                         f"{_number(row.get('peak_memory_gib'), '.1f')} | {row['first_step_s']:.1f} |")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="Markdown table to write (rewritten after each measurement)")
    parser.add_argument("--json", help="also write the numbers as JSON")
    parser.add_argument("--dry-run", action="store_true",
                        help="run every code path on the CPU at toy sizes (checks the script; the numbers mean nothing)")
    parser.add_argument("--budget-s", type=float, default=420,
                        help="start no measurement that would end later than this many seconds after the start")
    parser.add_argument("--batches", type=int, nargs="+", help="images per GPU to measure eager (default 16 32 64)")
    parser.add_argument("--compile-batches", type=int, nargs="*",
                        help="images per GPU to also measure with torch.compile (default 64; none in a dry run)")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    budget = Budget(args.budget_s)
    settings, device = (DRY_RUN, torch.device("cpu")) if args.dry_run else (GPU, torch.device("cuda"))
    if args.batches is not None:
        settings = dataclasses.replace(settings, batches=tuple(args.batches))
    if args.compile_batches is not None:
        settings = dataclasses.replace(settings, compile_batches=tuple(args.compile_batches))
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # a dry run shares the CPU; spinning OpenMP threads would only wait on each other
    try:
        run(settings, device, budget, args.out, args.json, args.dry_run)
    finally:
        torch.set_num_threads(threads)
    return 0


def run(settings: Settings, device: torch.device, budget: Budget, out: str, json_out: str | None,
        dry_run: bool) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    report = {"mode": "dry run on the CPU, toy sizes" if dry_run else "GPU",
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M %Z"),
              "load_average": os.getloadavg(), "matmul_n": settings.matmul_n,
              "view_batch": settings.view_batch, "eval_batch": settings.eval_batch}

    def write() -> None:
        Path(out).write_text(markdown(report))
        if json_out:
            Path(json_out).write_text(json.dumps(report, indent=1, default=str))

    peak = bf16_matmul_peak(device, settings.matmul_n, iterations=50 if device.type == "cuda" else 2)
    report["peak_tflops"] = peak / 1e12
    print(f"bf16 matmul peak {peak / 1e12:.3g} TFLOP/s", flush=True)
    report["views"] = view_throughput(settings, device, repeats=10 if device.type == "cuda" else 2)
    report["prefetch_matches"] = prefetch_matches(settings, device)
    write()
    report["eval"] = {label: eval_throughput(settings, arch, kwargs, device, bf16=True)
                      if budget.allows(NEED_S["eval"]) else "skipped: time budget spent"
                      for label, arch, kwargs in settings.models}
    write()
    report["steps"] = []
    step_rows(settings, device, True, peak, budget, report["steps"], write)
    write()
    print(markdown(report))


if __name__ == "__main__":
    sys.exit(main())
