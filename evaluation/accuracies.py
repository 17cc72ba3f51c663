"""The one place that knows where a record keeps its probe accuracies.

Selection and the paper's data figures read accuracies only through these functions, so that when the
evaluation results move (a probe registry is planned) only this module changes. Today a record holds, in
`evaluation` (evaluation/record.py): `linear_top1`, `knn_top1@K` for each K, and `few_shot: {shots: {mean,
std, draws}}`. Accuracies are fractions in [0, 1]. A metrics.jsonl line (lejepa/metrics_log.py) holds
no accuracy yet; an online probe logged during training will add one (any key named like `*top1*`,
`*acc*`), which `metrics_accuracy` finds.
"""

from __future__ import annotations

import math
import re
from typing import Any

LINEAR = "linear"
KNN = "knn"
PROBES = (LINEAR, KNN)
KNN_K = 20  # the neighbour count the report's kNN columns use (evaluation/references.py OUR_PROTOCOLS)

_LABELS = {LINEAR: "frozen linear probe top-1", KNN: f"kNN@{KNN_K} top-1"}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _evaluation(record: dict) -> dict:
    return record.get("evaluation") or {}


def probe_accuracy(record: dict, probe: str = LINEAR) -> float | None:
    """The run's accuracy under `probe` (linear or knn, the whole labelled training split), else None."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; known: {', '.join(PROBES)}")
    key = "linear_top1" if probe == LINEAR else f"knn_top1@{KNN_K}"
    value = _evaluation(record).get(key)
    return float(value) if _finite(value) else None


def few_shot_accuracies(record: dict) -> dict[int, tuple[float, float]]:
    """{labelled images per class: (mean, std over draws)} of the frozen linear probe, by shots."""
    out: dict[int, tuple[float, float]] = {}
    for shots, entry in (_evaluation(record).get("few_shot") or {}).items():
        if isinstance(entry, dict) and _finite(entry.get("mean")):
            std = entry.get("std")
            out[int(shots)] = (float(entry["mean"]), float(std) if _finite(std) else 0.0)
    return dict(sorted(out.items()))


_METRICS_ACCURACY = re.compile(r"(^|_)(top1|acc|accuracy)($|_|@)")


def metrics_accuracy(line: dict) -> tuple[str, float] | None:
    """(key, accuracy) of a metrics.jsonl line that carries an accuracy (the first such key by name)."""
    for key in sorted(line):
        if _METRICS_ACCURACY.search(key) and _finite(line[key]):
            return key, float(line[key])
    return None


def probe_of(records: list[dict]) -> str:
    """The probe to read from these records: linear where any record has it, else kNN."""
    return LINEAR if any(probe_accuracy(r, LINEAR) is not None for r in records) else KNN


def probe_label(probe: str) -> str:
    return _LABELS[probe]
