"""Records as flat rows: the shared vocabulary of tables and figures.

A record becomes a dict of dotted keys (`spec.train.lr`, `evaluation.probes.linear.top1`) plus the keys reports
group by: dataset, method, arch, transfer_from (the pretraining dataset of a model.init_from run) and status.
"""

from __future__ import annotations

import math
from typing import Any

from evaluation.record import upgrade_evaluation
from lejepa.names import did_you_mean

MISSING = None  # how a spec key absent from a record shows up in a group key

# Short names for the group keys people ask for most; any other key is a dotted record path.
KEY_ALIASES = {"dataset": "dataset", "method": "method", "arch": "arch", "seed": "spec.seed",
               "transfer_from": "transfer_from"}
DEFAULT_GROUP_BY = ["dataset", "method", "arch"]

# Spec keys that say where or how a run ran, not what it computed: never a reason to split a group.
_NOT_HYPERPARAMETERS = ("spec.seed", "spec.experiment", "spec.resources.", "spec.data.root",
                        "spec.data.num_workers", "spec.train.device", "spec.train.checkpoint_every",
                        "spec.train.log_every", "spec.eval.batch_size")


def flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys; lists become tuples so that any value can be a group key."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        elif isinstance(value, dict):
            flat[path] = MISSING
        elif isinstance(value, list):
            flat[path] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        else:
            flat[path] = value
    return flat


def status_of(record: dict) -> str:
    """'failed: out of memory' and 'failed' are the same status; the reason lives in record['reason']."""
    return str(record.get("status") or "unknown").split(":")[0].strip()


def transfer_source(record: dict) -> str | None:
    """The dataset a transfer run's weights were pretrained on (evaluation.transfer_from), else None."""
    source = (record.get("evaluation") or {}).get("transfer_from")
    if isinstance(source, dict):
        source = source.get("dataset")
    return str(source) if source else None


def pretrain_epochs(record: dict) -> float | None:
    """Epochs the evaluated weights were pretrained for: the source run's for a transfer run (its own
    train.epochs is 0), else the run's own."""
    source = (record.get("evaluation") or {}).get("transfer_from")
    if isinstance(source, dict) and source:
        return source.get("pretrain_epochs")  # absent in records written before it was recorded
    return ((record.get("spec") or {}).get("train") or {}).get("epochs")


def describe(record: dict) -> dict[str, Any]:
    """A flattened record (its evaluation in the current layout, evaluation/record.py) plus the derived keys
    the reports group by."""
    evaluation = record.get("evaluation")
    if isinstance(evaluation, dict):
        record = {**record, "evaluation": upgrade_evaluation(evaluation, record.get("spec") or {})}
    flat = flatten(record)
    spec = record.get("spec") or {}
    flat["dataset"] = spec.get("data", {}).get("name")
    flat["method"] = (spec.get("method") or {}).get("name")
    flat["arch"] = spec.get("model", {}).get("arch")
    flat["transfer_from"] = transfer_source(record)
    flat["pretrain_epochs"] = pretrain_epochs(record)
    flat["status"] = status_of(record)
    return flat


def resolve_key(key: str, rows: list[dict[str, Any]]) -> str:
    """A group key as the user wrote it ('dataset', 'method.lamb', 'spec.method.lamb') -> its row key."""
    if key in KEY_ALIASES:
        return KEY_ALIASES[key]
    known = set().union(*rows) if rows else set()
    for candidate in (key, f"spec.{key}"):
        if candidate in known:
            return candidate
    if rows:
        raise KeyError(f"group key '{key}' is in no record{did_you_mean(key, sorted(known))}")
    return key


def display_name(row_key: str) -> str:
    return row_key.removeprefix("spec.")


def varying_keys(rows: list[dict[str, Any]], within: list[str]) -> list[str]:
    """Spec keys (hyper-parameters) that take more than one value inside some group of `within`."""
    candidates = sorted({k for row in rows for k in row if k.startswith("spec.")
                         and not k.startswith(_NOT_HYPERPARAMETERS)})
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(hashable(row.get(k)) for k in within), []).append(row)
    return [key for key in candidates
            if any(len({hashable(r.get(key)) for r in members}) > 1 for members in groups.values())]


def group_keys(rows: list[dict[str, Any]], group_by: list[str] | None) -> list[str]:
    if group_by:
        return [resolve_key(k, rows) for k in group_by]
    keys = [KEY_ALIASES[k] for k in DEFAULT_GROUP_BY]
    if any(row.get("transfer_from") for row in rows):
        keys.append("transfer_from")  # in-domain and transfer runs of one dataset are different rows
    return keys + varying_keys(rows, keys)


def hashable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return MISSING
    return value


def sort_key(value: Any) -> tuple:
    """Numbers in numeric order, then text; missing last (group keys mix types)."""
    if value is MISSING:
        return (2, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))
