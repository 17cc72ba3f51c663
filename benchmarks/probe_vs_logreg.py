"""Is the linear probe ever the bottleneck? The suite's probe against an independent, converged
multinomial logistic regression on the same cached features (issue 19's table).

For each run of an experiment whose features are cached (`results/<experiment>/<run>/features/{train,test}.pt`,
written by `lejepa launch`), with the run's own eval settings (spec.json: epochs, batch, weight decay,
held-out fraction, seed):
- old probe: the probe as it was before issue 19 (LayerNorm with affine + Linear, the CPU manifests' lrs then),
  loaded from git at OLD_PROBE_COMMIT so that both are timed in this one process;
- new probe: evaluation.linear_probe with its default grid (normalisations x DEFAULT_LRS);
- logreg: scikit-learn LogisticRegression (lbfgs, multinomial; not newton-cholesky as in the tests: raw
  pixels' 23,520 weights make its Hessian 4 GB) on features standardised with the fit split's
  statistics, trained on the same fit split, C (REFERENCE_CS) chosen on the same held-out split
  (holdout_split), top-1 on test once; and, as in the issue, "logreg C on test": standardised on all of train, trained on
  all of train, the better test top-1 of C in {0.1, 1} (optimistic: chosen on test).
- seconds: wall and process CPU time of each probe call (training, held-out choice and test), old and new
  alternately in the same process; logistic regression is not timed.

    .venv/bin/python benchmarks/probe_vs_logreg.py results/quickstart [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from evaluation.linear_probe import DEFAULT_LRS, NORMS, holdout_split, linear_probe

OLD_PROBE_COMMIT = "ec987eb"  # the last commit before issue 19 changed evaluation/linear_probe.py
OLD_LRS = (1e-3, 3e-3, 1e-2)  # the CPU manifests' probe grid before issue 19
REFERENCE_CS = tuple(float(c) for c in np.logspace(-4, 2, 13))  # half-decades; 1e2 is nearly unregularised


def old_probe_module():
    """evaluation/linear_probe.py as of OLD_PROBE_COMMIT, imported under another name."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "-C", str(root), "show", f"{OLD_PROBE_COMMIT}:evaluation/linear_probe.py"],
                            check=True, capture_output=True, text=True).stdout
    name = f"linear_probe_{OLD_PROBE_COMMIT}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


def logistic_regression_holdout_c(train_x, train_y, test_x, test_y, fraction: float, seed: int,
                                  cs: tuple[float, ...] = REFERENCE_CS) -> tuple[float, float]:
    """(test top-1, C) of the C with the best held-out top-1 (first of equals), fit split only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    fit, holdout = holdout_split(train_y, fraction, seed)
    scaler = StandardScaler().fit(train_x[fit].numpy())
    fit_x, holdout_x, test_np = (scaler.transform(a.numpy()) for a in (train_x[fit], train_x[holdout], test_x))
    best = None
    for c in cs:
        model = LogisticRegression(C=c, max_iter=5000).fit(fit_x, train_y[fit].numpy())
        score = model.score(holdout_x, train_y[holdout].numpy())
        if best is None or score > best[0]:
            best = (score, c, model.score(test_np, test_y.numpy()))
    return best[2], best[1]


def logistic_regression_test_c(train_x, train_y, test_x, test_y) -> tuple[float, float]:
    """The issue's check: all of train, C in {0.1, 1} picked on test (optimistic)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x.numpy())
    x, t = scaler.transform(train_x.numpy()), scaler.transform(test_x.numpy())
    scores = {c: LogisticRegression(C=c, max_iter=5000).fit(x, train_y.numpy()).score(t, test_y.numpy())
              for c in (0.1, 1.0)}
    c = max(scores, key=scores.get)
    return scores[c], c


def timed(call, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = call(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def frozen(cache: dict) -> torch.Tensor:
    """The frozen features of a cache file: a dict of readouts since the probe registry (issue 14), one
    tensor before."""
    features = cache["features"]
    return features["frozen"] if isinstance(features, dict) else features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment_dir", type=Path, help="e.g. results/quickstart")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (1: CPU time does not depend on the machine's other load)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--only", default=None, help="comma-separated rows (methods), e.g. lejepa,random_init")
    parser.add_argument("--cs", default=None, help="comma-separated C grid of the held-out logistic regression "
                        "(default: 13 half-decades 1e-4 to 1e2; fewer for raw pixels' many values)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # scikit-learn's BLAS too: no oversubscription on a shared machine
    print(f"load average at start: {os.getloadavg()}", file=sys.stderr)
    old = old_probe_module()
    rows = []
    for run in sorted(p for p in args.experiment_dir.iterdir() if (p / "features" / "test.pt").exists()):
        spec = json.loads((run / "spec.json").read_text())
        e, method = spec["eval"], spec["method"]["name"]
        if args.only and method not in args.only.split(","):
            continue
        train = torch.load(run / "features" / "train.pt", weights_only=True)
        test = torch.load(run / "features" / "test.pt", weights_only=True)
        data = (frozen(train), train["labels"], frozen(test), test["labels"], int(train["labels"].max()) + 1)
        common = {"choices": {"all": slice(None)}, "epochs": e["linear_epochs"], "batch_size": e["linear_batch_size"],
                  "weight_decay": e["linear_weight_decay"], "holdout_fraction": e["holdout_fraction"],
                  "seed": spec["seed"]}
        old_result, old_wall, old_cpu = timed(old.linear_probe, *data, lrs=OLD_LRS, **common)
        new_result, new_wall, new_cpu = timed(linear_probe, *data, lrs=DEFAULT_LRS, norms=NORMS, **common)
        cs = tuple(float(c) for c in args.cs.split(",")) if args.cs else REFERENCE_CS
        logreg, c = logistic_regression_holdout_c(*data[:4], e["holdout_fraction"], spec["seed"], cs)
        logreg_test, c_test = logistic_regression_test_c(*data[:4])
        rows.append({
            "row": method, "features": list(data[0].shape), "old_probe": old_result.top1,
            "old_head": f"layernorm_affine_lr{old_result.lr:g}_{old_result.features}", "new_probe": new_result.top1,
            "new_head": new_result.name, "new_steps": new_result.steps, "logreg": logreg, "logreg_c": c,
            "logreg_c_on_test": logreg_test, "logreg_c_on_test_c": c_test, "gap": new_result.top1 - logreg,
            "old_wall_s": old_wall, "new_wall_s": new_wall, "old_cpu_s": old_cpu, "new_cpu_s": new_cpu,
            "heads": {"old": len(OLD_LRS), "new": len(new_result.holdout_by_head)},
        })
        print(json.dumps(rows[-1]), file=sys.stderr)
    print("| row | old probe top-1 | new probe top-1 (head) | logreg, C on held-out | logreg, C on test "
          "{0.1, 1} | new - logreg | old probe s (CPU s) | new probe s (CPU s) | heads old / new |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['row']} | {100 * r['old_probe']:.2f} | {100 * r['new_probe']:.2f} ({r['new_head']}) | "
              f"{100 * r['logreg']:.2f} (C={r['logreg_c']:.3g}) | {100 * r['logreg_c_on_test']:.2f} "
              f"(C={r['logreg_c_on_test_c']:g}) | {100 * r['gap']:+.2f} | {r['old_wall_s']:.1f} ({r['old_cpu_s']:.1f}) | "
              f"{r['new_wall_s']:.1f} ({r['new_cpu_s']:.1f}) | {r['heads']['old']} / {r['heads']['new']} |")
    print(f"load average at the end: {os.getloadavg()}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
