"""CPU cost of the multi-crop views: ours before and after the split pipeline, and the
view pipelines of the peers a user would otherwise use, on the same JPEG files, in one run.

Views: 2 x 224 px (scale 0.3-1) + 6 x 98 px (scale 0.05-0.3), the paper's LeJEPA views. Every pipeline
starts from the file: decode (PIL, as lejepa.data.common.ImageFileDataset) then its transform. Rows:

- ours, before: the per-image path as it was at commit ec987eb (torchvision v2 on tensors, colour jitter,
  grayscale, a 23-tap 2-D Gaussian blur at 224 px, solarisation, normalisation), rebuilt here;
- ours, per-image path now: the same with the separable blur (lejepa/views.py, `views.batched: false`);
- ours, new CPU part: decode + uint8 random-resized crops + the photometric draws (lejepa/crops.py), what a
  loader worker does; the photometry then runs per batch on the GPU (its CPU cost there is a few kernel
  launches; the second table gives its cost if it ran on the CPU);
- lightly: lightly.transforms.DINOTransform set to the paper's views (scales, 98 px local views, jitter
  0.8 x (0.4, 0.4, 0.2, 0.1), grayscale 0.2, blur 0.5 on every view, solarisation 0.2, which lightly
  applies to the second global view only); PIL operations, bicubic crops, PIL's box-filter blur;
- stable-pretraining: its transforms composed as its LeJEPA benchmark composes them
  (benchmarks/imagenet10/lejepa-vit-small.py in galilai-group/stable-pretraining: 23-tap blur on every
  view), with 98 px local views; torchvision v2 on PIL images.

Peers are imported, never copied; one that is not installed is skipped with a message. Each row's cost is
process CPU time per image (one torch thread, as in a DataLoader worker) and wall time, the median over
`--repeats` passes over all images, the pipelines interleaved pass by pass so that all see the same load.

The second table: the photometric half on a batch of `--batch` images on the CPU, ours (batched, per-image
draws) against torchvision v2 per image and kornia (if installed), from benchmarks/photometric_candidates.py;
median of `--photometric-repeats` interleaved repeats (these are memory-bound, so noisy on a shared machine).

    .venv-bench/bin/python benchmarks/view_pipeline_bench.py [--images 200] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import photometric_candidates
import torch
import torchvision
from PIL import Image
from torchvision.transforms import v2

from lejepa.crops import CropViews
from lejepa.data.common import ImageFileDataset
from lejepa.data.registry import IMAGENET_MEAN, IMAGENET_STD
from lejepa.data.sampling import ViewDataset
from lejepa.spec import ViewSpec
from lejepa.views import MultiCropViews

VIEWS = ViewSpec(global_views=2, local_views=6, global_size=224, local_size=98, global_scale=(0.3, 1.0),
                 local_scale=(0.05, 0.3))
EXPECTED_SHAPES = [(3, 224, 224)] * 2 + [(3, 98, 98)] * 6
IMAGE_SIZE = (500, 375)  # width x height: about ImageNet's average image


def make_jpegs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` 500 x 375 JPEGs (quality 90) of gradients, rings and noise: enough detail that the encoder
    does real work, different in every file."""
    rng = np.random.default_rng(seed)
    width, height = IMAGE_SIZE
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for i in range(count):
        cx, cy, freq = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.02, 0.2)
        rings = 127 * (1 + np.sin(freq * np.hypot(x - cx, y - cy)))
        base = np.stack([x * rng.uniform(0.2, 0.5), rings, y * rng.uniform(0.3, 0.7)], axis=-1)
        pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        paths.append(folder / f"{i:05d}.jpg")
        Image.fromarray(pixels).save(paths[-1], quality=90)
    return paths


def _before_view(size: int, scale, mean, std) -> v2.Compose:
    """lejepa/views.py's per-image transform at ec987eb (with torchvision's 2-D Gaussian blur)."""
    return v2.Compose([
        v2.ToImage(), v2.RGB(),
        v2.RandomResizedCrop(size, scale=tuple(scale), ratio=tuple(VIEWS.ratio), antialias=True),
        v2.RandomHorizontalFlip(0.5),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=VIEWS.color_jitter),
        v2.RandomGrayscale(VIEWS.grayscale),
        v2.RandomApply([v2.GaussianBlur(max(3, (size // 10) | 1), sigma=(0.1, 2.0))], p=VIEWS.blur),
        v2.RandomSolarize(threshold=128, p=VIEWS.solarize),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


class Before:
    """The whole per-image path at ec987eb: two global and six local views of one image."""

    def __init__(self):
        self.global_view = _before_view(224, VIEWS.global_scale, IMAGENET_MEAN, IMAGENET_STD)
        self.local_view = _before_view(98, VIEWS.local_scale, IMAGENET_MEAN, IMAGENET_STD)

    def __call__(self, image) -> list[torch.Tensor]:
        return [self.global_view(image) for _ in range(2)] + [self.local_view(image) for _ in range(6)]


def ours(dataset: ImageFileDataset) -> dict[str, Callable[[int], object]]:
    """Our rows, each as a loader worker runs it: ViewDataset decodes image `i` and seeds its draws."""
    rows = {
        "ours, before (per-image, ec987eb)": Before(),
        "ours, per-image path now (separable blur)": MultiCropViews(VIEWS, 224, IMAGENET_MEAN, IMAGENET_STD),
        "ours, new CPU part (uint8 crops + draws)": CropViews(VIEWS, 224),
    }
    return {name: _worker_item(ViewDataset(dataset, make, seed=0)) for name, make in rows.items()}


def _worker_item(items: ViewDataset) -> Callable[[int], object]:
    return lambda i: items[(0, i)][0]


def peers(dataset: ImageFileDataset) -> dict[str, Callable[[int], object] | str]:
    """Each peer's pipeline as a function of the image index, or the reason it is skipped."""
    rows: dict[str, Callable[[int], object] | str] = {}
    try:
        from lightly.transforms import DINOTransform

        lightly = DINOTransform(
            global_crop_size=224, global_crop_scale=VIEWS.global_scale, local_crop_size=98,
            local_crop_scale=VIEWS.local_scale, n_local_views=6, cj_prob=0.8, cj_strength=1.0, cj_bright=0.4,
            cj_contrast=0.4, cj_sat=0.2, cj_hue=0.1, random_gray_scale=0.2, gaussian_blur=(0.5, 0.5, 0.5),
            sigmas=(0.1, 2.0), solarization_prob=0.2,
        )
        rows[f"lightly {metadata.version('lightly')} DINOTransform"] = lambda i: lightly(dataset[i][0])
    except ImportError:
        rows["lightly DINOTransform"] = "skipped: lightly is not installed (pip install lightly)"
    try:
        import stable_pretraining as spt
        from stable_pretraining.data import transforms as T

        def view(size, scale):
            return T.Compose(
                T.RGB(), T.RandomResizedCrop((size, size), scale=scale), T.RandomHorizontalFlip(p=0.5),
                T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8),
                T.RandomGrayscale(p=0.2), T.GaussianBlur(kernel_size=23, sigma=(0.1, 2.0), p=0.5),
                T.RandomSolarize(threshold=128, p=0.2), T.ToImage(**spt.data.static.ImageNet),
            )

        multi = T.MultiViewTransform({**{f"global_{i}": view(224, VIEWS.global_scale) for i in range(2)},
                                      **{f"local_{i}": view(98, VIEWS.local_scale) for i in range(6)}})
        rows[f"stable-pretraining {metadata.version('stable-pretraining')} MultiViewTransform"] = (
            lambda i: multi({"image": dataset[i][0], "label": 0}))
    except ImportError:
        rows["stable-pretraining MultiViewTransform"] = (
            "skipped: stable-pretraining is not installed (pip install stable-pretraining)")
    return rows


def view_shapes(output) -> list[tuple[int, ...]]:
    """The views' shapes, whatever container a pipeline returns them in."""
    if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], torch.Tensor):  # ours: crops, draws
        output = output[0]
    if isinstance(output, dict):  # stable-pretraining: {name: {"image": view, ...}}
        output = [item["image"] for item in output.values()]
    return [tuple(view.shape) for view in output]


def measure(rows: dict[str, Callable[[int], object]], count: int, repeats: int) -> dict[str, dict]:
    """Median CPU and wall milliseconds per image over `repeats` passes, the rows interleaved pass by pass."""
    for name, make in rows.items():
        if view_shapes(make(0)) != EXPECTED_SHAPES:
            raise AssertionError(f"{name} made views {view_shapes(make(0))}, expected {EXPECTED_SHAPES}")
        for i in range(min(10, count)):  # warm-up: imports, allocator, caches
            make(i)
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    wall: dict[str, list[float]] = {name: [] for name in rows}
    names = list(rows)
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:  # rotate who goes first
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            for i in range(count):
                rows[name](i)
            cpu[name].append(1e3 * (time.process_time() - start_cpu) / count)
            wall[name].append(1e3 * (time.perf_counter() - start_wall) / count)
    return {name: {"cpu_ms": statistics.median(cpu[name]), "wall_ms": statistics.median(wall[name]),
                   "cpu_ms_all": cpu[name]} for name in rows}


def measure_photometric(dataset: ImageFileDataset, batch: int, repeats: int) -> dict[str, dict | str]:
    """The photometric half on the CPU: milliseconds per image (all 8 views) on one batch of crops."""
    items = ViewDataset(dataset, CropViews(VIEWS, 224), seed=0)
    samples = [items[(0, i % len(dataset))][0] for i in range(batch)]
    crops = [torch.stack([s[0][v] for s in samples]) for v in range(len(EXPECTED_SHAPES))]
    params = torch.stack([s[1] for s in samples])
    results: dict[str, dict | str] = {}
    runnable = {}
    for name, candidate in photometric_candidates.candidates(IMAGENET_MEAN, IMAGENET_STD).items():
        if isinstance(candidate, str):
            results[name] = candidate
        else:
            candidate(crops, params)  # warm-up
            runnable[name], results[name] = candidate, {"cpu": []}
    for _ in range(repeats):
        for name, candidate in runnable.items():
            start = time.process_time()
            candidate(crops, params)
            results[name]["cpu"].append(1e3 * (time.process_time() - start) / batch)
    for name in runnable:
        results[name] = {"cpu_ms": statistics.median(results[name]["cpu"])}
    return results


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64, help="batch of the photometric comparison")
    parser.add_argument("--photometric-repeats", type=int, default=15,
                        help="interleaved repeats of the photometric comparison (memory-bound: noisy on a shared CPU)")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker
    load_start = os.getloadavg()
    versions = f"torch {torch.__version__}, torchvision {torchvision.__version__}, Pillow {Image.__version__}"
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {cpu_model()}, {os.cpu_count()} CPUs; {versions}; "
          f"load average at start {load_start}")
    with tempfile.TemporaryDirectory() as folder:
        paths = make_jpegs(Path(folder), args.images)
        dataset = ImageFileDataset(paths, [0] * len(paths))
        rows, skipped = ours(dataset), {}
        for name, row in peers(dataset).items():
            (skipped if isinstance(row, str) else rows)[name] = row
        results = measure(rows, args.images, args.repeats)
        photometric = measure_photometric(dataset, args.batch, args.photometric_repeats)
    load_end = os.getloadavg()
    new = results["ours, new CPU part (uint8 crops + draws)"]["cpu_ms"]
    peer_names = [name for name in results if not name.startswith("ours")]
    fastest_peer = min((results[name]["cpu_ms"] for name in peer_names), default=None)
    print(f"{args.images} JPEGs of {IMAGE_SIZE[0]} x {IMAGE_SIZE[1]} px, views 2 x 224 + 6 x 98 px, median of "
          f"{args.repeats} interleaved passes; load average at the end {load_end}\n")
    print("| pipeline | CPU ms / image | wall ms / image | CPU / ours new | fastest peer CPU / this |")
    print("|---|---:|---:|---:|---:|")
    for name, row in results.items():
        versus_peer = f"{fastest_peer / row['cpu_ms']:.2f}" if fastest_peer else "-"
        print(f"| {name} | {row['cpu_ms']:.2f} | {row['wall_ms']:.2f} | {row['cpu_ms'] / new:.2f} | {versus_peer} |")
    for name, reason in skipped.items():
        print(f"| {name} | {reason} | | | |")
    if fastest_peer:
        verdict = "met" if fastest_peer / new >= 4 else "NOT met"
        print(f"\nGoal (at least 4x less CPU per image than the fastest peer): {fastest_peer / new:.2f}x, {verdict}")
    print(f"\nPhotometric half on the CPU, batch of {args.batch} images x 8 views, median of "
          f"{args.photometric_repeats} interleaved repeats (ms per image):\n")
    print("| implementation | CPU ms / image |\n|---|---:|")
    for name, row in photometric.items():
        print(f"| {name} | {row if isinstance(row, str) else format(row['cpu_ms'], '.2f')} |")
    if args.json:
        report = {"images": args.images, "repeats": args.repeats, "photometric_repeats": args.photometric_repeats,
                  "load_start": load_start, "load_end": load_end,
                  "cpu": cpu_model(), "versions": versions, "rows": results, "skipped": skipped,
                  "photometric_cpu": photometric}
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
