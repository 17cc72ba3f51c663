"""The one place that knows where a record keeps its probe accuracies.

Tables, figures, selection, `lejepa status` and the paper's data figures read accuracies only through these
functions, which read the probe registry (evaluation/probes/): each probe's record section
(`evaluation.probes.NAME`, evaluation/record.py) and the metrics, labels and protocols it declares. Records
of schema 1 are read in the current layout (evaluation/record.py `upgrade_evaluation`). Accuracies are
fractions in [0, 1]. A metrics.jsonl line (lejepa/metrics_log.py) carries the online probe's running train
accuracy as `online_top1`, which `metrics_accuracy` finds (any key named like `*top1*`, `*acc*`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from evaluation.probes import PROBES as REGISTRY
from evaluation.probes import Metric, protocol_text, record_metrics
from evaluation.record import upgrade_evaluation

LINEAR, KNN, ONLINE = "linear", "knn", "online_linear"
PROBES = (LINEAR, KNN, ONLINE)  # the probes with one accuracy per run, in the order `probe_of` prefers them
KNN_K = 20  # the neighbour count of kNN's headline (DINO's; evaluation/probes/knn.py)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _upgraded(record: dict) -> dict:
    evaluation = record.get("evaluation") or {}
    return {**record, "evaluation": upgrade_evaluation(evaluation, record.get("spec") or {})}


def section(record: dict, probe: str) -> dict:
    """The record's section of `probe` ({} when it did not run)."""
    found = ((_upgraded(record)["evaluation"].get("probes")) or {}).get(probe)
    return found if isinstance(found, dict) else {}


def _value(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def headline_metric(probe: str, record: dict | None = None) -> Metric | None:
    """The probe's headline metric, as `record` holds it (or as the report always shows it)."""
    cls = REGISTRY[probe]
    metrics = cls.metrics(section(record, probe)) if record is not None else cls.standing()
    return next((m for m in metrics if m.headline), None)


def probe_accuracy(record: dict, probe: str = LINEAR) -> float | None:
    """The run's headline accuracy under `probe` (linear: top-1; knn: k = 20; online_linear: top-1), else None."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; known: {', '.join(PROBES)}")
    metric = headline_metric(probe, record)
    if metric is None:
        return None
    value = _value(_upgraded(record), metric.path)
    return float(value) if _finite(value) else None


def metric_values(record: dict) -> list[tuple[Metric, Any]]:
    """Every metric the record holds (the probes' in registry order), with its value as recorded."""
    upgraded = _upgraded(record)
    return [(metric, _value(upgraded, metric.path)) for metric in record_metrics(upgraded)]


def few_shot_accuracies(record: dict) -> dict[int, tuple[float, float]]:
    """{labelled images per class: (mean, std over draws)} of the frozen linear probe, by shots."""
    out: dict[int, tuple[float, float]] = {}
    for shots, entry in section(record, "few_shot").items():
        if str(shots).isdigit() and isinstance(entry, dict) and _finite(entry.get("mean")):
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
    """The probe to read from these records: the first of linear, kNN, online linear that any record has."""
    for probe in PROBES:
        if any(probe_accuracy(r, probe) is not None for r in records):
            return probe
    return LINEAR


def probe_label(probe: str) -> str:
    """'linear top-1', 'kNN@20 top-1', 'online linear top-1': the headline's label."""
    return headline_metric(probe).label


def row_key(probe: str) -> str:
    """The headline's key in a flattened record (evaluation/rows.py describe)."""
    return headline_metric(probe).path


# ---------------------------------------------------------------- the report's metric columns

def _natural(column: str) -> tuple:
    match = re.fullmatch(r"(.*?)(\d+)", column)
    return (match.group(1), int(match.group(2))) if match else (column, -1)


def table_metrics(records: list[dict]) -> tuple[list[Metric], list[dict[str, Metric]]]:
    """The report's metric columns (each probe's standing columns, then every metric some record holds;
    probes in registry order, columns in natural order within a probe) and, per record, {column: its
    metric}, whose protocol is that record's."""
    per_record = [{m.column: m for m in record_metrics(_upgraded(r))} for r in records]
    columns: list[Metric] = []
    for cls in REGISTRY.values():
        found = {m.column: m for m in cls.standing()}
        for metrics in per_record:
            for column, metric in metrics.items():
                if metric.path.startswith(f"{cls.section_path()}."):
                    found.setdefault(column, metric)
        columns += sorted(found.values(), key=lambda m: _natural(m.column))
    return columns, per_record


def protocol_notes(metrics: list[Metric], per_record: list[dict[str, Metric]]) -> dict[str, str]:
    """{column: its protocol(s) in words} for each column some record holds."""
    notes = {}
    for metric in metrics:
        texts = list(dict.fromkeys(protocol_text(found[metric.column].protocol) for found in per_record
                                   if metric.column in found))
        if texts:
            notes[metric.column] = " / ".join(texts)
    return notes
