"""TensorBoard event files for a study, written by `lejepa report`: `tensorboard --logdir results/<study>`.

One folder per run, <report folder>/tensorboard/<run_id>/, holding
- train/<name> at every logged step: the loss, its parts (pred, sigreg, ...), lr and images/s, from the run's
  metrics.jsonl (lejepa/train.py);
- eval/<metric> at the run's last pretraining step: linear top-1/top-5, kNN top-1 at every k, few-shot
  means, the effective rank of the test embedding, from its record;
- the run's spec as text.

They are written at report time from metrics.jsonl and the records, not by the training loop: the records
stay the one source of truth (a report rewrites the files from them, so they can never disagree), runs made
by any executor or on any cluster get them alike, and training needs no TensorBoard. Each report replaces a
run's folder whole, so reporting twice does not duplicate points. Wall times are the record's: its creation
time minus the evaluation and pretraining seconds, plus each line's elapsed seconds.
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np

from evaluation.accuracies import metric_values
from evaluation.figures.spectrum import effective_rank
from evaluation.record import run_dir
from lejepa.metrics_log import read_metrics

SKIPPED_FIELDS = {"step", "total_steps", "epoch", "elapsed"}  # axes and bookkeeping, not curves


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def evaluation_scalars(record: dict) -> dict[str, float]:
    """eval/<metric> -> value: every accuracy of the record, as a percentage, and the effective rank."""
    evaluation = record.get("evaluation") or {}
    scalars = {f"eval/{metric.column}": 100 * value if metric.percent else value
               for metric, value in metric_values(record) if _finite(value)}
    spectrum = evaluation.get("embedding_spectrum")
    if isinstance(spectrum, list) and spectrum and all(_finite(v) for v in spectrum):
        scalars["eval/effective_rank"] = effective_rank(np.asarray(spectrum, dtype=float))
    return scalars


def _times(record: dict) -> tuple[float, float]:
    """(wall time the pretraining started, wall time the record was written), in seconds since the epoch."""
    created = datetime.fromisoformat(record["created"]).timestamp()
    spent = sum(section.get("wall_seconds") or 0.0 for section in (record.get("pretrain") or {},
                                                                   record.get("evaluation") or {}))
    return created - spent, created


def write_run_events(record: dict, folder: Path, metrics: list[dict]) -> Path:
    """Write one run's event file into `folder` (replaced whole); returns the file."""
    from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package (pyproject.toml)

    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.writing")
    shutil.rmtree(staging, ignore_errors=True)
    start, created = _times(record)
    writer = SummaryWriter(log_dir=str(staging))
    try:
        for line in metrics:
            for name, value in line.items():
                if name not in SKIPPED_FIELDS and _finite(value):
                    writer.add_scalar(f"train/{name}", value, line["step"], walltime=start + (line.get("elapsed") or 0))
        step = (record.get("pretrain") or {}).get("steps") or 0
        for tag, value in evaluation_scalars(record).items():
            writer.add_scalar(tag, value, step, walltime=created)
        spec = json.dumps(record["spec"], indent=2, sort_keys=True)
        writer.add_text("spec", f"status: {record['status']}\n\n```\n{spec}\n```", step, walltime=created)
    finally:
        writer.close()
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return next(folder.glob("events.out.tfevents.*"))


def write_event_files(records: list[dict], out_dir: Path, results_root: Path | None = None) -> list[Path]:
    """One event file per record under out_dir/tensorboard/<run_id>/. Training curves come from
    results_root/<experiment>/<run_id>/metrics.jsonl when results_root is given and the file exists."""
    written = []
    for record in records:
        metrics = []
        if results_root is not None:
            with warnings.catch_warnings():  # a damaged line was already named when the run resumed
                warnings.simplefilter("ignore")
                metrics = read_metrics(run_dir(results_root, record["experiment"], record["run_id"]) / "metrics.jsonl")
        written.append(write_run_events(record, Path(out_dir) / "tensorboard" / record["run_id"], metrics))
    return written
