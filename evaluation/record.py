"""The result record: one JSON file per run, written atomically (DESIGN.md section 8).

Reports read only these files. The schema is versioned; a reader refuses a record from a newer schema
instead of guessing. Layout: results/<experiment>/<run_id>/result.json.

    {
      "schema": 1, "run_id": str, "experiment": str, "created": ISO-8601 UTC,
      "status": "done" | "failed" | "diverged", "reason": str | null,
      "spec": RunSpec.to_dict(),
      "pretrain": {"status", "steps", "epochs", "wall_seconds", "images_per_second",
                   "final_loss", "final_parts": {"pred": ..., "sigreg": ...}, "reason"},
      "evaluation": {"linear_top1", "linear_top5", "linear_head": {"lr", "features", "holdout_top1"},
                     "knn_top1@10", "knn_top1@20", "knn_top1@100", "knn_top1@200",
                     "few_shot": {"1": {"mean", "std", "draws"}, ...},
                     "feature_dim", "train_images", "test_images", "wall_seconds"},
      "environment": {"python", "torch", "timm", "git_commit", "device", "world_size", "hostname"}
    }
Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from lejepa.checkpoint import atomic_write_bytes

SCHEMA_VERSION = 1
RECORD_NAME = "result.json"


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


def make_record(spec, status: str, *, pretrain: dict | None = None, evaluation: dict | None = None,
                reason: str | None = None, env: dict | None = None) -> dict:
    return {
        "schema": SCHEMA_VERSION, "run_id": spec.run_id, "experiment": spec.experiment,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": status, "reason": reason, "spec": spec.to_dict(),
        "pretrain": pretrain or {}, "evaluation": evaluation or {}, "environment": env or {},
    }


def write_record(results_root: Path, record: dict) -> Path:
    """Atomic: concurrent array tasks each rename their own file into place, so none is half-written."""
    path = record_path(results_root, record["experiment"], record["run_id"])
    payload = json.dumps(record, indent=2, sort_keys=True).encode()
    atomic_write_bytes(path, lambda f: f.write(payload))
    return path


def read_record(path: Path) -> dict:
    record = json.loads(Path(path).read_text())
    if record.get("schema", 0) > SCHEMA_VERSION:
        raise ValueError(f"{path} has schema {record['schema']}; this lejepa-bench reads up to {SCHEMA_VERSION}")
    return record


def read_records(results_root: Path, experiment: str) -> list[dict]:
    """Every record of an experiment, oldest run folder first."""
    folder = Path(results_root) / experiment
    return [read_record(p) for p in sorted(folder.glob(f"*/{RECORD_NAME}"))]
