"""How long `lejepa report` takes on a study of 200 records (tables and every figure), on this machine.

    .venv/bin/python benchmarks/report_bench.py [--records 200] [--repeat 3]

Synthetic records laid out as the pipeline writes them (2 architectures x 5 lambdas x 4 view counts x 5
seeds). Prints the wall time of each repeat and their median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import synthetic_record

from evaluation.report import write_report


def records(count: int) -> list[dict]:
    grid = [(arch, lamb, views, seed) for arch in ("resnet18", "resnet34") for lamb in (0.01, 0.05, 0.1, 0.2, 0.3)
            for views in (2, 4, 6, 8) for seed in range(5)]
    return [synthetic_record(seed=seed, arch=arch, method={"name": "lejepa", "lamb": lamb, "num_slices": 256},
                             local_views=views, linear=0.5 + lamb + 0.01 * views + 0.001 * seed, loss=1 - lamb)
            for arch, lamb, views, seed in grid[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    study = records(args.records)
    times = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            write_report("bench", study, Path(out))
            times.append(time.perf_counter() - start)
    print(f"write_report on {len(study)} records: " + ", ".join(f"{t:.2f} s" for t in times)
          + f"; median {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
