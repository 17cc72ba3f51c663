"""SIGReg forward+backward: time and peak memory at the paper's sizes, all in one run, as ratios.

Implementations (each draws its K directions, projects, computes the statistic, and backpropagates to z):
  ours              lejepa.sigreg.SIGReg (phasor recurrence, slices walked in cache-sized chunks)
  ours, one chunk   the same with the whole N x K tensor as one chunk (what the chunking buys)
  direct            the definition, lejepa.sigreg.epps_pulley_direct: materialises N x K x knots
  lightly           lightly.loss.lejepa_loss.SIGReg (PyPI `lightly`)
  stable-pretraining stable_pretraining.methods.lejepa.SlicedEppsPulley (PyPI `stable-pretraining`)
  projection only   z @ A and its backward: the floor every implementation pays
The packages are imported, never copied; they are installed only in a separate environment (see
benchmarks/RESULTS.md). Missing ones are reported as skipped.

Sizes (docs/sigreg.md; the paper's V = 8 views): N = 8 views x 256 = 2048 samples, D in 128..2048, K = 1024 slices, 17 knots.
All implementations get z as one (2048, D) sample (stable-pretraining takes only 2-D input; the cost is the
same as 8 views of 256) and the same directions (each is seeded so), so they compute the same numbers:
the run checks that before it times anything.

Time: median over interleaved repeats (the order rotates every repeat), both the process CPU time and the
wall time. With --threads 1 (the default) the CPU time is what the work costs whatever else runs on the
machine; wall times on a shared machine are noisy. Ratios are taken between implementations measured in
this same run.

Peak memory: every (implementation, D) runs in a fresh process: a warm-up call, then the peak resident set
(VmHWM, reset through /proc/self/clear_refs) during one more call, minus the resident set just before it.
glibc's mmap threshold is fixed (MALLOC_MMAP_THRESHOLD_) so that freed tensors leave the resident set
instead of being kept for reuse, which would hide the second call's peak. It includes z's gradient
(2048 x D floats) and anything else the call allocates; it is Linux-only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

import torch

import lejepa.sigreg as sigreg_module
from lejepa.sigreg import SIGReg, epps_pulley_direct, random_directions

SAMPLES = 8 * 256


@contextmanager
def _one_chunk():
    saved = sigreg_module.CHUNK_ELEMENTS.get("cpu")
    sigreg_module.CHUNK_ELEMENTS["cpu"] = 2**40
    try:
        yield
    finally:
        sigreg_module.CHUNK_ELEMENTS["cpu"] = saved


def _ours(dim: int, slices: int, knots: int):
    module = SIGReg(slices, knots, seed=0)
    return lambda z: module(z, step=0)  # seed 0, step 0: the generator is seeded with 0


def _ours_one_chunk(dim: int, slices: int, knots: int):
    ours = _ours(dim, slices, knots)

    def run(z):
        with _one_chunk():
            return ours(z)

    return run


def _direct(dim: int, slices: int, knots: int):
    return lambda z: epps_pulley_direct(z @ random_directions(dim, slices, 0, 0), knots=knots).mean()


def _projection_only(dim: int, slices: int, knots: int):
    return lambda z: (z @ random_directions(dim, slices, 0, 0)).sum()


def _lightly(dim: int, slices: int, knots: int):
    from lightly.loss.lejepa_loss import SIGReg as LightlySIGReg

    module = LightlySIGReg(knots=knots, t_max=3.0, num_vectors=slices)

    def run(z):
        torch.manual_seed(0)  # it draws its directions from the global generator: then the same as ours
        return module(z)

    return run


def _stable_pretraining(dim: int, slices: int, knots: int):
    from stable_pretraining.methods.lejepa import SlicedEppsPulley

    module = SlicedEppsPulley(num_slices=slices, t_max=3.0, n_points=knots)

    def run(z):
        module.global_step.zero_()  # it seeds a generator with its step counter: step 0, as ours
        return module(z)

    return run


IMPLEMENTATIONS = {
    "ours": _ours,
    "ours, one chunk": _ours_one_chunk,
    "direct": _direct,
    "lightly": _lightly,
    "stable-pretraining": _stable_pretraining,
    "projection only": _projection_only,
}
BASELINE = "direct"


def _input(dim: int) -> torch.Tensor:
    return torch.randn(SAMPLES, dim, generator=torch.Generator().manual_seed(dim)).requires_grad_(True)


def _step(fn, z: torch.Tensor) -> float:
    z.grad = None
    value = fn(z)
    value.backward()
    return value.item()


def available(names, dim: int, slices: int, knots: int) -> tuple[dict, dict]:
    made, skipped = {}, {}
    for name in names:
        try:
            made[name] = IMPLEMENTATIONS[name](dim, slices, knots)
        except ImportError as error:
            skipped[name] = f"not installed ({error})"
    return made, skipped


def check_agreement(fns: dict, dim: int) -> dict[str, float]:
    """Largest relative difference from ours in value and gradient: they must compute the same thing."""
    z = _input(dim)
    reference_value = _step(fns["ours"], z)
    reference_grad = z.grad.clone()
    scale = reference_grad.abs().max()
    differences = {}
    for name, fn in fns.items():
        if name == "projection only":
            continue
        value = _step(fn, z)
        differences[name] = max(abs(value - reference_value) / abs(reference_value),
                                ((z.grad - reference_grad).abs().max() / scale).item())
    return differences


def time_all(fns: dict, dim: int, repeats: int) -> dict[str, dict[str, float]]:
    z = _input(dim)
    for fn in fns.values():  # warm-up: first-call allocations and lazy initialisation
        _step(fn, z)
    names = list(fns)
    cpu: dict[str, list[float]] = {name: [] for name in names}
    wall: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:
            gc.collect()
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            _step(fns[name], z)
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    return {name: {"cpu_s": statistics.median(cpu[name]), "wall_s": statistics.median(wall[name])} for name in names}


# --- peak memory, one fresh process per case -----------------------------------------------------------


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure_memory_here(name: str, dim: int, slices: int, knots: int) -> int:
    fn = IMPLEMENTATIONS[name](dim, slices, knots)
    z = _input(dim)
    _step(fn, z)
    z.grad = None
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set (VmHWM) to the current one
    before = _status_bytes("VmRSS")
    _step(fn, z)
    return _status_bytes("VmHWM") - before


def measure_memory(name: str, dim: int, args) -> int | None:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": str(args.threads)}
    command = [sys.executable, __file__, "--memory-case", name, str(dim), "--slices", str(args.slices),
               "--knots", str(args.knots), "--threads", str(args.threads)]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        print(f"memory case {name} D={dim} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return int(done.stdout.strip().splitlines()[-1])


# --- report -------------------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, torch {torch.__version__}"


def table(results: dict, dims: list[int], names: list[str], key: str = "cpu_s") -> str:
    """Markdown table; time ratios on `key`: "cpu_s" (one thread) or "wall_s" (several)."""
    header = "| D | implementation | CPU ms | wall ms | peak MiB | time / ours | time / direct | memory / ours | "
    lines = [header + "memory / direct |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for dim in dims:
        row = results[dim]
        for name in names:
            if name not in row["time"]:
                lines.append(f"| {dim} | {name} | {row['skipped'].get(name, 'skipped')} | | | | | | |")
                continue
            t, m = row["time"][name][key], row["memory"].get(name)
            t_ours, t_base = row["time"]["ours"][key], row["time"][BASELINE][key]
            m_ours, m_base = row["memory"].get("ours"), row["memory"].get(BASELINE)

            def ratio(a, b):
                return f"{a / b:.2f}" if a is not None and b else "-"

            lines.append(
                f"| {dim} | {name} | {1e3 * row['time'][name]['cpu_s']:.0f} | {1e3 * row['time'][name]['wall_s']:.0f} | "
                f"{'-' if m is None else f'{m / 2**20:.0f}'} | {ratio(t, t_ours)} | {ratio(t, t_base)} | "
                f"{ratio(m, m_ours)} | {ratio(m, m_base)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--slices", type=int, default=1024)
    parser.add_argument("--knots", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: see the docstring)")
    parser.add_argument("--only", nargs="+", choices=list(IMPLEMENTATIONS), default=list(IMPLEMENTATIONS))
    parser.add_argument("--no-memory", action="store_true", help="skip the per-case memory processes")
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--table-from", metavar="JSON", help="print the table of an earlier --json run and exit")
    parser.add_argument("--memory-case", nargs=2, metavar=("NAME", "D"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.table_from:
        with open(args.table_from) as f:
            earlier = json.load(f)
        results = {int(dim): row for dim, row in earlier["results"].items()}
        key = "cpu_s" if earlier["args"]["threads"] == 1 else "wall_s"
        print(table(results, sorted(results), earlier["args"]["only"], key))
        return
    if args.memory_case:
        name, dim = args.memory_case
        print(measure_memory_here(name, int(dim), args.slices, args.knots))
        return

    if "ours" not in args.only or BASELINE not in args.only:
        parser.error(f"--only must include 'ours' and '{BASELINE}': the ratios are taken against them")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(f"# SIGReg forward+backward, N={SAMPLES}, K={args.slices}, knots={args.knots}, threads={args.threads}")
    print(f"# {machine()}; load average at start {os.getloadavg()}; {started}")
    results = {}
    for dim in args.dims:
        fns, skipped = available(args.only, dim, args.slices, args.knots)
        differences = check_agreement(fns, dim)
        for name, difference in differences.items():
            if difference > 1e-4:
                raise SystemExit(f"{name} disagrees with ours at D={dim}: relative difference {difference:.2e}")
        timings = time_all(fns, dim, args.repeats)
        memory = {} if args.no_memory else {name: measure_memory(name, dim, args) for name in fns}
        results[dim] = {"time": timings, "memory": memory, "skipped": skipped, "max_difference": differences}
        print(f"D={dim} done; largest difference from ours {max(differences.values()):.1e}", flush=True)
    print()
    key = "cpu_s" if args.threads == 1 else "wall_s"
    print(f"time ratios on {'CPU' if key == 'cpu_s' else 'wall'} time")
    print(table(results, args.dims, args.only, key))
    print(f"\n# load average at end {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "started": started, "args": vars(args),
                       "results": {str(k): v for k, v in results.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
