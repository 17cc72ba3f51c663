"""The result record: one JSON file per run, results/<experiment>/<run_id>/result.json, written atomically.

This docstring and `Record` are the schema, the only place it is written down. Reports read only records.

    schema        int, RECORD_SCHEMA (a reader refuses a newer one instead of guessing)
    run_id        str, the spec's run_id, which is also the name of the record's folder
    experiment    str
    created       ISO-8601 UTC
    status        "done" | "failed" | "diverged"
    reason        str | null: why a run failed or diverged
    spec          RunSpec.to_dict()
    pretrain      {status, steps, epochs, wall_seconds, images_per_second, final_loss,
                   final_parts: {name: value}, reason}; {} for runs that do not pretrain
    evaluation    {linear_top1, linear_top5, linear_head: {name, norm, lr, features, holdout_top1, ...},
                   knn_top1@K for each K, few_shot: {shots: {mean, std, draws}},
                   feature_dim, train_images, test_images, embedding_spectrum, wall_seconds,
                   transfer_from: {dataset, experiment, run_id, step} (model.init_from runs)}
    environment   {python, torch, timm, git_commit, device, world_size, hostname}
    health        {verdict: "ok" | "did not learn" | "reference", checks: {name: {value, threshold, passed,
                   passes_if, uses_labels, ...}}} (evaluation/health.py): the job's label-free checks of a
                   done run; absent or null: not checked (records written before the check, runs not done).
                   Reports judge the stored values against the current thresholds and add the
                   cross-run check (the probe's gap to random init), which is not stored.

Accuracies are fractions in [0, 1]. A record only counts for a run when it passes `read_record`: it parses,
has every key with the right type, and (given the run) names that run and holds a spec whose run_id is it,
so a record copied or linked into another run's folder is not taken for that run's.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import socket
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lejepa.files import atomic_write_text
from lejepa.spec import RunSpec, SpecError

RECORD_SCHEMA = 1
RECORD_NAME = "result.json"
STATUSES = ("done", "failed", "diverged")


class RecordError(ValueError):
    """A record file that cannot count: unreadable, malformed, of a newer schema, or not the run's own."""


class NewerSchema(RecordError):
    """A record written by a newer lejepa-bench: not readable here, and never to be overwritten."""


@dataclass(frozen=True)
class Record:
    schema: int
    run_id: str
    experiment: str
    created: str
    status: str
    reason: str | None
    spec: dict
    pretrain: dict
    evaluation: dict
    environment: dict
    health: dict | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_dir(results_root: Path, experiment: str, run_id: str) -> Path:
    return Path(results_root) / experiment / run_id


def record_path(results_root: Path, experiment: str, run_id: str) -> Path:
    return run_dir(results_root, experiment, run_id) / RECORD_NAME


def environment(device: str, world_size: int) -> dict:
    import timm
    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
        "git_commit": commit, "device": device, "world_size": world_size, "hostname": socket.gethostname(),
    }


def make_record(spec: RunSpec, status: str, *, pretrain: dict | None = None, evaluation: dict | None = None,
                reason: str | None = None, env: dict | None = None, health: dict | None = None) -> dict:
    if status not in STATUSES:
        raise ValueError(f"record status must be one of {STATUSES}, got {status!r}")
    return Record(RECORD_SCHEMA, spec.run_id, spec.experiment, datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  status, reason, spec.to_dict(), pretrain or {}, evaluation or {}, env or {}, health).to_dict()


def write_record(results_root: Path, record: dict) -> Path:
    """Atomic: concurrent array tasks each rename their own file into place, so none is half-written."""
    path = record_path(results_root, record["experiment"], record["run_id"])
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True))
    return path


_TYPES = {"schema": int, "run_id": str, "experiment": str, "created": str, "status": str, "reason": (str, type(None)),
          "spec": dict, "pretrain": dict, "evaluation": dict, "environment": dict}


def read_record(path: Path, expect_run_id: str | None = None) -> dict:
    """The record at `path`, checked against the schema (and, given `expect_run_id`, that it is that run's);
    RecordError names the file and what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RecordError(f"{path}: not a readable JSON record ({error})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: a record is a JSON object, got {type(data).__name__}")
    if isinstance(data.get("schema"), int) and data["schema"] > RECORD_SCHEMA:
        raise NewerSchema(f"{path} has schema {data['schema']}; this lejepa-bench reads up to {RECORD_SCHEMA}: "
                          f"report it with the newer version that wrote it")
    wrong = [key for key, kind in _TYPES.items() if not isinstance(data.get(key), kind)]
    wrong += ["health"] if not isinstance(data.get("health"), (dict, type(None))) else []  # optional
    if wrong or data["status"] not in STATUSES:
        what = f"missing or mistyped {', '.join(wrong)}" if wrong else f"unknown status {data['status']!r}"
        raise RecordError(f"{path}: not a lejepa-bench record ({what})")
    if expect_run_id is not None:
        try:
            spec_id = RunSpec.from_dict(data["spec"]).run_id
        except (SpecError, KeyError, TypeError) as error:
            raise RecordError(f"{path}: its spec does not load ({error})") from None
        if not data["run_id"] == spec_id == expect_run_id:
            raise RecordError(f"{path}: belongs to run {data['run_id']} (spec {spec_id}), not {expect_run_id}: a record "
                              f"copied or linked from another run; move it away")
    return data


def read_records(results_root: Path, experiment: str) -> tuple[list[dict], list[str]]:
    """Every usable record of an experiment (oldest run folder first, each run once), and a line for each
    record file that cannot count and why (the caller names them and goes on with the rest)."""
    records, problems, seen = [], [], set()
    for path in sorted((Path(results_root) / experiment).glob(f"*/{RECORD_NAME}")):
        try:
            record = read_record(path, expect_run_id=path.parent.name)
        except RecordError as error:
            problems.append(str(error))
            continue
        if record["run_id"] in seen:
            problems.append(f"{path}: a second copy of run {record['run_id']} (a linked or copied folder); counted once")
            continue
        seen.add(record["run_id"])
        records.append(record)
    return records, problems
