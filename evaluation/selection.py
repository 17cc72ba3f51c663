"""Label-free model selection: rank a study's runs by their training loss scaled as in the paper's Eq. 8.

The paper (arXiv 2511.08544, Section 6.2, Eq. (8) and Fig. 11) correlates downstream accuracy with the final
training loss divided by lambda^alpha: across runs that vary lambda the raw loss mostly measures lambda
(the LeJEPA loss is (1 - lambda) * prediction + lambda * SIGReg), and the scaling removes that. The paper
reports Spearman's rho of about 0.85 at alpha = 0 (the raw loss) and up to 0.99 near alpha = 0.4, so the
ranking here uses PAPER_ALPHA = 0.4. Runs without a lambda (other methods) are ranked by their plain loss.

Sign convention: rho is Spearman's correlation between accuracy and the *negated* scaled loss, so it is
positive when a lower loss goes with a higher accuracy, as the paper reports it.

Runs are compared only within one experiment, dataset, method and backbone (the paper's Fig. 11 is per
dataset and model; losses of different methods are not on one scale). Probe numbers are read only to say
how well the label-free ranking agrees with them; they never enter the ranking.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from evaluation.accuracies import PROBES, probe_accuracy, probe_label, probe_of
from evaluation.rows import describe, display_name, varying_keys

PAPER_ALPHA = 0.4
PAPER_ALPHA_SOURCE = "paper Section 6.2, Eq. (8) and Fig. 11: rho about 0.85 at alpha = 0, up to 0.99 near 0.4"
MIN_RUNS = 3  # fewer runs than this give no meaningful rank correlation

GroupKey = tuple[str, str, str, str]  # experiment, dataset, method, arch


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def final_loss(record: dict) -> float | None:
    """The final pretraining loss of a finished run, else None."""
    value = (record.get("pretrain") or {}).get("final_loss")
    return float(value) if record.get("status") == "done" and _finite(value) else None


def lambda_of(record: dict) -> float | None:
    """The run's SIGReg weight (spec.method.lamb) when it has a positive one, else None."""
    value = ((record.get("spec") or {}).get("method") or {}).get("lamb")
    return float(value) if _finite(value) and value > 0 else None


def scaled_loss(record: dict, alpha: float = PAPER_ALPHA) -> float | None:
    """Eq. 8's loss / lambda^alpha; the plain loss for a run without lambda; None without a final loss."""
    loss, lamb = final_loss(record), lambda_of(record)
    if loss is None:
        return None
    return loss / lamb**alpha if lamb is not None else loss


def group_key(record: dict) -> GroupKey:
    spec = record.get("spec") or {}
    return (str(record.get("experiment")), str((spec.get("data") or {}).get("name")),
            str((spec.get("method") or {}).get("name")), str((spec.get("model") or {}).get("arch")))


def group_label(key: GroupKey) -> str:
    experiment, dataset, method, arch = key
    return f"{dataset}, {arch} ({method}; {experiment})"


def loss_groups(records: Iterable[dict]) -> dict[GroupKey, list[dict]]:
    """Finished runs with a final loss, by (experiment, dataset, method, arch), largest group first."""
    groups: dict[GroupKey, list[dict]] = {}
    for record in records:
        if final_loss(record) is not None:
            groups.setdefault(group_key(record), []).append(record)
    return dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))


def loss_accuracy_rho(records: list[dict], alpha: float, probe: str) -> tuple[float, int]:
    """(Spearman rho of accuracy against -loss/lambda^alpha, runs counted); rho is nan below MIN_RUNS runs
    or when either side is constant."""
    pairs = [(scaled_loss(r, alpha), probe_accuracy(r, probe)) for r in records]
    pairs = [(loss, acc) for loss, acc in pairs if loss is not None and acc is not None]
    if len(pairs) < MIN_RUNS:
        return math.nan, len(pairs)
    losses, accuracies = np.array(pairs).T
    if np.ptp(losses) == 0 or np.ptp(accuracies) == 0:
        return math.nan, len(pairs)
    return float(spearmanr(accuracies, -losses).statistic), len(pairs)


def rho_curve(records: list[dict], alphas: Iterable[float], probe: str) -> np.ndarray:
    """rho(alpha) for each alpha (Fig. 11's curve)."""
    return np.array([loss_accuracy_rho(records, float(a), probe)[0] for a in alphas])


def best_alpha(alphas: np.ndarray, rhos: np.ndarray) -> tuple[float, float]:
    """(alpha, rho) where rho is largest (the smallest such alpha); (nan, nan) when no rho is defined."""
    if np.all(np.isnan(rhos)):
        return math.nan, math.nan
    index = int(np.nanargmax(rhos))
    return float(alphas[index]), float(rhos[index])


@dataclass(frozen=True)
class Selection:
    """The label-free pick of one group of runs, and, where probe numbers exist, how it fares."""

    group: GroupKey
    alpha: float
    ranking: list[dict]  # best first: {run_id, scaled_loss, accuracy (None without probe), settings}
    probe: str | None
    rho: float | None  # Spearman(accuracy, -scaled loss) at alpha, over runs with accuracy
    rho_raw: float | None  # the same at alpha = 0 (the raw loss)
    without_lambda: int  # runs ranked by their plain loss

    @property
    def picked(self) -> dict:
        return self.ranking[0]

    @property
    def best(self) -> dict | None:
        scored = [r for r in self.ranking if r["accuracy"] is not None]
        return max(scored, key=lambda r: r["accuracy"]) if scored else None


def select_runs(records: list[dict], alpha: float = PAPER_ALPHA) -> list[Selection]:
    """One Selection per group of comparable runs (at least MIN_RUNS with a final loss)."""
    selections = []
    for key, runs in loss_groups(records).items():
        if len(runs) < MIN_RUNS:
            continue
        rows = [describe(r) for r in runs]
        shown = varying_keys(rows, [])
        has_probe = any(probe_accuracy(r, p) is not None for r in runs for p in PROBES)
        probe = probe_of(runs) if has_probe else None
        ranking = sorted(({
            "run_id": r["run_id"], "scaled_loss": scaled_loss(r, alpha),
            "accuracy": probe_accuracy(r, probe) if probe else None,
            "settings": {display_name(k): row.get(k) for k in shown},
        } for r, row in zip(runs, rows)), key=lambda item: (item["scaled_loss"], item["run_id"]))
        rho = rho_raw = None
        if probe:
            rho, rho_raw = (loss_accuracy_rho(runs, a, probe)[0] for a in (alpha, 0.0))
        selections.append(Selection(key, alpha, ranking, probe, rho, rho_raw,
                                    sum(lambda_of(r) is None for r in runs)))
    return selections


def _run_text(entry: dict) -> str:
    """The run id, with the settings that set it apart in its group where any do (runs differing only in
    seed have none to show)."""
    settings = ", ".join(f"{k} = {v}" for k, v in entry["settings"].items())
    return f"{entry['run_id']} ({settings})" if settings else entry["run_id"]


def _rho_text(value: float | None) -> str:
    return "undefined" if value is None or math.isnan(value) else f"{value:+.3f}"


def selection_lines(selections: list[Selection]) -> list[str]:
    """Markdown lines (also printed as they are): per group, the pick, the best run, and the agreement."""
    if not selections:
        return [f"No group of at least {MIN_RUNS} finished runs with a final training loss: nothing to rank."]
    alpha = selections[0].alpha
    lines = [(f"Runs ranked by final training loss / lambda^{alpha:g}, lowest first, without labels "
             f"(alpha from the {PAPER_ALPHA_SOURCE}; runs without lambda: plain loss). rho: Spearman between "
             "the probe's accuracy and the negated scaled loss (positive: the ranking agrees).")]
    for s in selections:
        picked, best = s.picked, s.best
        head = f"- {group_label(s.group)}, {len(s.ranking)} runs"
        if s.without_lambda:
            head += f" ({s.without_lambda} without lambda, ranked by plain loss)"
        head += f": picks {_run_text(picked)}, scaled loss {picked['scaled_loss']:.4g}"
        if best is None or picked["accuracy"] is None:
            lines.append(head + "; no probe numbers to check it against.")
            continue
        scored = sorted((r["accuracy"] for r in s.ranking if r["accuracy"] is not None), reverse=True)
        place = 1 + sum(a > picked["accuracy"] for a in scored)
        lines.append(
            head + f". {probe_label(s.probe)}: picked {picked['accuracy'] * 100:.2f} % vs best "
            f"{best['accuracy'] * 100:.2f} % ({_run_text(best)}); the pick is "
            f"number {place} of {len(scored)} by accuracy. Agreement with the probe: rho = {_rho_text(s.rho)} "
            f"at alpha {s.alpha:g}, {_rho_text(s.rho_raw)} on the raw loss (n = {len(scored)}).")
    return lines
