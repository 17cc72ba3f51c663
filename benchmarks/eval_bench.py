"""Frozen evaluation's wall time on the CPU at a fixed feature count: the code before the probe registry
(loaded from git) against the current one, in one process and sharded over two gloo ranks.

    .venv/bin/python benchmarks/eval_bench.py [--before 600045b] [--train 8000] [--test 2000] [--repeat 2]

The images are a synthetic in-memory dataset (registered here as `bench_synthetic`: 16 px, 10 classes whose
images differ in brightness, so the probes learn something); the backbone is the tests' narrow ResNet-18,
initialised from the seed; the evaluation is the default one (linear probe grid and kNN at k = 10, 20, 100,
200), features extracted from a cold cache each time. Every process runs one torch thread, so two ranks use
two cores where one process uses one. Before timing, the run checks that before and after give the same
linear and kNN numbers. Timed: `evaluate_frozen` from its call to its return on rank 0 (process start and
the group's set-up not included). Prints each repeat and the median ratios.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import make_tiny_spec

from evaluation.evaluate import evaluate_frozen
from lejepa.data.mnist_like import TensorImageDataset
from lejepa.data.registry import DATASETS, register_dataset
from lejepa.methods import build_method

SIZES = {"train": 8000, "test": 2000}
BEFORE = "600045b"  # main when the registry was merged into it: issue 19's linear probe, no registry yet


def _synthetic(_root: Path, split: str) -> TensorImageDataset:
    """Images whose mean brightness says their class, plus noise: a learnable, fixed set."""
    rng = np.random.default_rng(0 if split == "train" else 1)
    labels = np.arange(SIZES[split]) % 10
    images = rng.normal(60 + 15 * labels[:, None, None], 40, (SIZES[split], 16, 16)).clip(0, 255).astype(np.uint8)
    return TensorImageDataset(images, labels)


if "bench_synthetic" not in DATASETS:
    register_dataset("bench_synthetic", num_classes=10, image_size=16, mean=(0.4,) * 3, std=(0.2,) * 3,
                     default_root="(made in memory)", how_to_get="made by benchmarks/eval_bench.py")(_synthetic)


def _spec():
    return make_tiny_spec(data={"name": "bench_synthetic"}, eval={"knn_k": (10, 20, 100, 200)})


def load_before(commit: str, folder: Path):
    """evaluation/evaluate.py, features.py and knn.py as they were at `commit`, written under `folder` as a
    package of their own and imported (the rest, the linear probe included, is today's: at BEFORE it is the
    same code)."""
    package = folder / "evaluation_before"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("knn", "features", "evaluate"):
        source = subprocess.run(["git", "show", f"{commit}:evaluation/{name}.py"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout
        (package / f"{name}.py").write_text(
            re.sub(r"from evaluation\.(knn|features) import", r"from evaluation_before.\1 import", source))
    sys.path.insert(0, str(folder))
    return importlib.import_module("evaluation_before.evaluate").evaluate_frozen


def _timed(evaluate, *args) -> tuple[float, dict]:
    start = time.perf_counter()
    result = evaluate(*args)
    return time.perf_counter() - start, result


def _numbers_before(result: dict) -> dict:
    return {"linear": result["linear_top1"], **{f"knn@{k}": result[f"knn_top1@{k}"] for k in (10, 20, 100, 200)}}


def _numbers_after(result: dict) -> dict:
    knn = result["probes"]["knn"]
    return {"linear": result["probes"]["linear"]["top1"], **{f"knn@{k}": knn[f"top1@{k}"] for k in (10, 20, 100, 200)}}


def _probe_seconds(result: dict) -> float:
    return sum(section["wall_seconds"] for section in result["probes"].values())


def _worker(rank: int, port: int, out: Path, repeat: int, sizes: dict) -> None:
    SIZES.update(sizes)  # a spawned process imported this module afresh
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        spec = _spec()
        method = build_method(spec, 16)
        times, probes_seconds = [], []
        for index in range(repeat):
            dist.barrier()
            seconds, result = _timed(evaluate_frozen, spec, method, out / f"two_{index}", "step0", torch.device("cpu"))
            times.append(seconds)
            if rank == 0:
                (out / f"two_{index}.json").write_text(json.dumps(_numbers_after(result)))
                probes_seconds.append(_probe_seconds(result))
        if rank == 0:
            (out / "two_times.json").write_text(json.dumps([times, probes_seconds]))
    finally:
        dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="commit of the code before the registry")
    parser.add_argument("--train", type=int, default=SIZES["train"])
    parser.add_argument("--test", type=int, default=SIZES["test"])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    SIZES.update(train=args.train, test=args.test)
    torch.set_num_threads(1)
    spec = _spec()
    method = build_method(spec, 16)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        before = load_before(args.before, out)
        one_before, one_after, one_probes = [], [], []
        for index in range(args.repeat):  # interleaved, repeat by repeat
            seconds, old = _timed(before, spec, method, out / f"before_{index}", "step0", torch.device("cpu"))
            one_before.append(seconds)
            seconds, new = _timed(evaluate_frozen, spec, method, out / f"after_{index}", "step0", torch.device("cpu"))
            one_after.append(seconds)
            one_probes.append(_probe_seconds(new))
            assert _numbers_before(old) == _numbers_after(new), (_numbers_before(old), _numbers_after(new))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mp.spawn(_worker, args=(port, out, args.repeat, dict(SIZES)), nprocs=2, join=True)
        two, two_probes = json.loads((out / "two_times.json").read_text())
        assert json.loads((out / "two_0.json").read_text()) == _numbers_after(new)
    print(f"evaluate_frozen, {args.train} train + {args.test} test images, narrow ResNet-18, 1 thread per process; "
          f"numbers: {_numbers_after(new)}")
    for name, times, probes in (("before (one process)", one_before, None), ("after (one process)", one_after, one_probes),
                                ("after (two gloo ranks)", two, two_probes)):
        print(f"  {name:24s} " + ", ".join(f"{t:.2f} s" for t in times) + f"; median {statistics.median(times):.2f} s"
              + (f" (probes on rank 0: median {statistics.median(probes):.2f} s)" if probes else ""))
    print(f"  load average at the end: {os.getloadavg()}")
    base = statistics.median(one_before)
    print(f"  ratio after/before: one process {statistics.median(one_after) / base:.2f}, "
          f"two ranks {statistics.median(two) / base:.2f}")


if __name__ == "__main__":
    main()
