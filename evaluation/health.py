"""Run health (issue 20): did a run learn anything at its budget, so that its numbers can stand beside others?

A run that trains but learns nothing still gets a linear-probe number, and in a table it reads like a
result. The checks below catch that from what a run already produces, without labels where possible:

  loss_below_trivial        pretraining's final loss is clearly below its value at the method's trivial
                            solution: DINO's loss against ln K (uniform outputs); VICReg's variance term
                            and LeJEPA's SIGReg term against their values on a collapsed embedding. The
                            term, not the weighted total, for these two: a collapsed embedding costs
                            lambda x SIGReg in LeJEPA's total, which at a small lambda is below a healthy
                            run's prediction error; the term itself is far from collapse in any healthy run;
  loss_fell                 the loss fell from the start of the log to its end (the first and last fifth of
                            the logged values, averaged): training moved the model;
  effective_rank            the frozen test features spread over more than a couple of directions
                            (exp of the entropy of their covariance spectrum; 1 for a collapsed backbone);
  probe_gap_to_random_init  (uses labels) the linear probe beats the same backbone at random initialisation,
                            measured in the same study with the same data, backbone and probe settings.

The first three run in the job (`run_health`, written to the record's `health`); the last needs other runs
and is added when a study is read (`study_health`). A run is "ok" when every check it has passes and "did
not learn" when one fails. Reference rows (random_init, raw_pixels) train nothing: "reference". A record
without `health` (written before these checks existed) is "not checked" unless the cross-run check applies.
Each check is {value, threshold, passed, uses_labels, passes_if, ...details}.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

import numpy as np
import torch

from lejepa.methods import get_method, parse_options
from lejepa.methods.dino import uniform_output_loss
from lejepa.methods.vicreg import collapsed_variance_term
from lejepa.sigreg import quadrature
from lejepa.spec import RunSpec

OK, DID_NOT_LEARN, REFERENCE, NOT_CHECKED = "ok", "did not learn", "reference", "not checked"

# Thresholds. Each is a margin beyond the noise of the quantity it tests, measured on this suite's CPU runs
# (experiments/baselines.yaml; numbers in the README's baselines paragraph).
#
# The final loss (or term) must be at most this fraction of its trivial value. At the trivial solution the
# value is exact whatever the batch (DINO's 6.93 = ln 1024 for all 125 steps of the first CPU baselines), and
# a run near it varies from step to step by a few per cent (views, and LeJEPA's slices, are redrawn every
# step), so 10% under it is a real departure.
TRIVIAL_FRACTION = 0.9
# The loss must fall by at least this fraction from the start of the log to its end. A model whose weights do
# not move (lr ~ 0, a frozen backbone) still logs a loss that wanders around its first value: a tiny LeJEPA
# at lr 1e-9 (tests/experiments/test_health_cli.py) went from step 1 to step 6 by -6.5%, one step to the next
# by up to 5%, hence means over the first and the last fifth of the log (0.4% over 20 steps, windows of 4).
# 2% is five times that, and below the slowest fall of a run that learnt: VICReg's loss, dominated by its
# variance hinge, fell 4.3% in the 248 steps of experiments/baselines.yaml while its probe beat random init
# by 25 points.
MIN_RELATIVE_FALL = 0.02
LOG_FRACTION = 0.2
# exp(entropy) of the normalised eigenvalues: 1 when every sample maps to one line (complete collapse),
# D for an isotropic embedding. Below 2 the features vary along about one direction.
MIN_EFFECTIVE_RANK = 2.0
# Linear top-1 points over the random-init row of the same backbone: about the seed-to-seed standard
# deviation of the CPU baselines' probe (1-2 points), so a smaller gap is within noise of no training. The
# random-init row keeps BatchNorm's initial running statistics, so a run whose weights never moved but whose
# statistics did beats it by a wide margin (+21 points for a tiny LeJEPA at lr 1e-9 on digits): this check
# catches runs no better than an untrained backbone; loss_fell is the one that catches frozen weights.
MIN_PROBE_GAP_PP = 2.0

# What makes a random-init row the reference of a run: same data, backbone and probe (docs/evaluation.md).
_REFERENCE_KEYS = {"data": ("name", "image_size", "train_limit", "test_limit"),
                   "model": ("arch", "small_image_stem", "timm_kwargs"),
                   "eval": ("linear", "knn", "knn_k", "knn_temperature", "linear_lrs", "linear_epochs",
                            "linear_batch_size", "linear_weight_decay", "holdout_fraction")}
RANDOM_INIT = "random_init"


def effective_rank(eigenvalues) -> float:
    """exp(entropy) of the normalised spectrum (Roy and Vetterli 2007, "The effective rank"): D for an
    isotropic embedding, 1 for a collapsed one."""
    p = np.clip(np.asarray(eigenvalues, dtype=float), 0, None)
    if p.sum() <= 0:
        return 1.0  # no variance at all: every sample is the same point
    p = p / p.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def collapsed_sigreg(samples: int, t_max: float = 3.0, knots: int = 17) -> float:
    """SIGReg of N identical embeddings at the origin, in closed form, on the suite's quadrature.

    Every projection of N equal samples is one number s, so the empirical characteristic function is
    exp(i t s) and the Epps-Pulley statistic is N sum_j w_j |exp(i t_j s) - phi(t_j)|^2 (lejepa/sigreg.py),
    whatever the slice. It is smallest at s = 0, the embedding that also zeroes LeJEPA's prediction term:
    N sum_j w_j (1 - exp(-t_j^2 / 2))^2 (about 0.41 N at the default 17 knots on [0, 3])."""
    t, weights, _ = quadrature(t_max, knots)
    return samples * float((weights * (1 - torch.exp(-0.5 * t**2)) ** 2).sum())


def trivial_value(spec: RunSpec) -> tuple[str, float, str] | None:
    """(the term compared: "loss" or a final_parts key, its value at the trivial solution, how that value is
    made) for the spec's method, or None for a method without one."""
    _, options = parse_options(spec.method)
    name = spec.method["name"]
    if name == "dino":
        return "loss", uniform_output_loss(options), f"ln K = ln {options.out_dim}, uniform outputs"
    if name == "vicreg":
        return "var", collapsed_variance_term(options), (f"variance hinge at collapse: var_target - sqrt(var_eps) = {options.var_target:g} - "
                              f"{math.sqrt(options.var_eps):g}, x var_weight {options.var_weight:g} in the loss")
    if name == "lejepa":
        # SIGReg's N is the global batch (the ecf sums are added over ranks), one view at a time.
        return "sigreg", collapsed_sigreg(spec.train.batch_size, options.t_max, options.knots), (
            f"SIGReg of {spec.train.batch_size} equal embeddings, x lambda {options.lamb:g} in the loss")
    return None


def make_check(value: float, threshold: float, passes_if: str, uses_labels: bool, **details: Any) -> dict:
    passed = value >= threshold if passes_if == ">=" else value <= threshold
    return {"value": float(value), "threshold": float(threshold), "passed": bool(passed), "passes_if": passes_if,
            "uses_labels": uses_labels, **details}


def verdict_of(checks: dict[str, dict]) -> str:
    if not checks:
        return NOT_CHECKED
    return OK if all(check["passed"] for check in checks.values()) else DID_NOT_LEARN


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def loss_fall(metrics: list[dict]) -> dict | None:
    """Relative fall of the logged loss: (start - end) / |start|, start and end the means of the first and
    the last LOG_FRACTION of the logged lines (at least one each); None with fewer than two lines."""
    logged = [line for line in metrics if _finite(line.get("loss"))]
    if len(logged) < 2:
        return None
    window = max(1, int(LOG_FRACTION * len(logged)))
    start = statistics.fmean(line["loss"] for line in logged[:window])
    end = statistics.fmean(line["loss"] for line in logged[-window:])
    if start == 0:
        return None
    return {"value": (start - end) / abs(start), "start_loss": start, "end_loss": end,
            "start_steps": [logged[0]["step"], logged[window - 1]["step"]],
            "end_steps": [logged[-window]["step"], logged[-1]["step"]]}


def run_health(spec: RunSpec, pretrain: dict, evaluation: dict, metrics: list[dict], pretrains: bool = True) -> dict:
    """The label-free checks of one finished run, from its pretraining result, its metrics log (the lines of
    metrics.jsonl) and its evaluation (the embedding spectrum of the frozen test features)."""
    if not pretrains:
        return {"verdict": REFERENCE, "checks": {}}
    checks: dict[str, dict] = {}
    final = pretrain.get("final_loss")
    if _finite(final):
        trivial = trivial_value(spec)
        parts = pretrain.get("final_parts") or {}
        if trivial is not None:
            term, value, how = trivial
            measured = final if term == "loss" else parts.get(term)
            if _finite(measured):
                checks["loss_below_trivial"] = make_check(measured, TRIVIAL_FRACTION * value, "<=", False,
                                                          term=term, trivial=value, trivial_is=how)
        fell = loss_fall(metrics)
        if fell is not None:
            checks["loss_fell"] = make_check(fell.pop("value"), MIN_RELATIVE_FALL, ">=", False, **fell)
    spectrum = evaluation.get("embedding_spectrum")
    if isinstance(spectrum, list) and len(spectrum) > 1:
        checks["effective_rank"] = make_check(effective_rank(spectrum), MIN_EFFECTIVE_RANK, ">=", False,
                                              dimensions=len(spectrum))
    return {"verdict": verdict_of(checks), "checks": checks}


# ------------------------------------------------------------------------------ at report time

def _reference_identity(record: dict) -> str:
    spec = record.get("spec") or {}
    picked = {section: {key: (spec.get(section) or {}).get(key) for key in keys}
              for section, keys in _REFERENCE_KEYS.items()}
    return json.dumps(picked, sort_keys=True, default=str)


def _method_name(record: dict) -> str | None:
    return ((record.get("spec") or {}).get("method") or {}).get("name")


def _is_reference_row(record: dict) -> bool:
    try:
        return not get_method(_method_name(record)).pretrains
    except (KeyError, ValueError, TypeError):
        return False


def _probe(record: dict) -> float | None:
    value = (record.get("evaluation") or {}).get("linear_top1")
    return float(value) if _finite(value) else None


def rejudge(name: str, check: dict) -> dict:
    """A recorded check judged again against this module's thresholds: a record keeps what was measured,
    and a threshold revised since the job ran applies to it without rerunning anything."""
    thresholds = {"loss_fell": MIN_RELATIVE_FALL, "effective_rank": MIN_EFFECTIVE_RANK}
    if name == "loss_below_trivial" and _finite(check.get("trivial")):
        thresholds[name] = TRIVIAL_FRACTION * check["trivial"]
    if name not in thresholds or not _finite(check.get("value")):
        return check
    details = {k: v for k, v in check.items() if k not in ("value", "threshold", "passed", "passes_if", "uses_labels")}
    return make_check(check["value"], thresholds[name], check.get("passes_if", ">="), bool(check.get("uses_labels")),
                      **details)


def study_health(records: list[dict]) -> dict[str, dict]:
    """Each finished run's health as reports show it, by run_id: the checks its job recorded (judged against
    the current thresholds, `rejudge`), plus the linear probe's gap to the mean of the random-init runs of the
    same backbone in `records` where there are any. Runs that are not done get no entry (their status
    already says what happened)."""
    references: dict[str, list[float]] = {}
    for record in records:
        if record.get("status") == "done" and _method_name(record) == RANDOM_INIT and _probe(record) is not None:
            references.setdefault(_reference_identity(record), []).append(_probe(record))
    out: dict[str, dict] = {}
    for record in records:
        if record.get("status") != "done":
            continue
        stored = record.get("health") or {}
        if stored.get("verdict") == REFERENCE or _is_reference_row(record):
            out[record["run_id"]] = {"verdict": REFERENCE, "checks": {}}
            continue
        checks = {name: rejudge(name, check) for name, check in (stored.get("checks") or {}).items()}
        reference, probe = references.get(_reference_identity(record)), _probe(record)
        if reference and probe is not None:
            baseline = 100 * statistics.fmean(reference)
            checks["probe_gap_to_random_init"] = make_check(
                100 * probe - baseline, MIN_PROBE_GAP_PP, ">=", True, random_init_top1=baseline,
                random_init_runs=len(reference))
        out[record["run_id"]] = {"verdict": verdict_of(checks), "checks": checks}
    return out


def failed_checks(health: dict) -> str:
    """The failing checks in words: 'loss_below_trivial 6.931 > 6.238 (0.9 x ln K = ln 1024, ...)'."""
    parts = []
    for name, check in (health.get("checks") or {}).items():
        if check.get("passed"):
            continue
        relation = "<" if check.get("passes_if") == ">=" else ">"
        term = f" ({check['term']})" if check.get("term", "loss") != "loss" else ""
        text = f"{name}{term} {check['value']:.4g} {relation} {check['threshold']:.4g}"
        if "trivial_is" in check:
            text += f" ({TRIVIAL_FRACTION:g} x {check['trivial']:.4g}: {check['trivial_is']})"
        if check.get("uses_labels"):
            text += " (uses labels)"
        parts.append(text)
    return "; ".join(parts)


def is_unhealthy(health: dict | None) -> bool:
    return bool(health) and health.get("verdict") == DID_NOT_LEARN
