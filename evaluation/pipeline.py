"""One run, start to finish: pretrain (or resume) -> frozen evaluation -> result record.

The record carries the run's health (evaluation/health.py): its label-free checks that it learnt anything.

This is what every executor runs (local, debug, SLURM array task; slurm/job.py wraps it). It is
idempotent: run again after a crash or preemption, it resumes from the newest checkpoint and reuses cached
features; run on a finished run, it returns the record. One process trains a run at a time (the run
folder's lock, lejepa/run_lock.py): a second one returns a "skipped" result and writes nothing.
A run with model.init_from skips pretraining and evaluates the named run's final weights instead.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import torch
import torch.distributed as dist

from evaluation.evaluate import evaluate_frozen
from evaluation.health import run_health
from evaluation.record import (
    NewerSchema,
    RecordError,
    environment,
    make_record,
    read_record,
    record_path,
    run_dir,
    write_record,
)
from evaluation.transfer import load_source_method
from lejepa.checkpoint import remove_interrupted_writes, set_aside
from lejepa.distributed import local_device, rank, world_size
from lejepa.files import atomic_write_text
from lejepa.metrics_log import read_metrics
from lejepa.run_lock import RunLocked, run_lock
from lejepa.spec import RunSpec
from lejepa.train import pretrain


def _previous_record(spec: RunSpec, results_root: Path) -> dict | None:
    """A finished record of this run, if there is one. A damaged record is set aside (kept) so the run can
    write a good one; a record of a newer schema is never overwritten."""
    path = record_path(results_root, spec.experiment, spec.run_id)
    if not path.exists():
        return None
    try:
        record = read_record(path, expect_run_id=spec.run_id)
    except NewerSchema:
        raise
    except RecordError as error:
        aside = set_aside(path)
        print(f"lejepa: {error}; kept as {aside.name}, the run will write a new record", flush=True)
        return None
    return record if record["status"] == "done" else None


def _agree(locked_out: bool) -> bool:
    """Rank 0 took (or failed to take) the lock; every rank follows its answer."""
    if world_size() == 1:
        return locked_out
    flag = torch.tensor([int(locked_out)])
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def run_job(spec: RunSpec, results_root: str | Path, progress: bool = True) -> dict:
    results_root = Path(results_root)
    folder = run_dir(results_root, spec.experiment, spec.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        locked_out = None
        if rank() == 0:
            try:
                stack.enter_context(run_lock(folder))
            except RunLocked as error:
                locked_out = str(error)
        if _agree(locked_out is not None):
            return {"status": "skipped", "reason": locked_out or "rank 0 found the run in use"}
        if rank() == 0:
            for where in (folder, folder / "features"):  # writes a killed attempt left half done
                remove_interrupted_writes(where)
            finished = _previous_record(spec, results_root)
            if finished is not None:
                return finished
            atomic_write_text(folder / "spec.json", json.dumps(spec.to_dict(), indent=2, sort_keys=True))
        return _pretrain_evaluate_record(spec, results_root, folder, progress)


def _pretrain_evaluate_record(spec: RunSpec, results_root: Path, folder: Path, progress: bool) -> dict:
    device = local_device(spec.train.device)
    env = environment(str(device), world_size())
    try:
        if spec.model.init_from:  # no pretraining: another run's final weights, evaluated on this dataset
            if rank() != 0:
                return {}
            method, source = load_source_method(spec, results_root, device)
            evaluation = evaluate_frozen(spec, method, folder, f"{spec.model.init_from}:step{source['step']}", device)
            health = run_health(spec, {}, evaluation, [])  # its pretraining is the source run's, checked there
            record = make_record(spec, "done", evaluation={**evaluation, "transfer_from": source}, env=env,
                                 health=health)
        else:
            method, result = pretrain(spec, folder, progress=progress)
            if rank() != 0:  # rank 0 evaluates and writes the one record
                return {}
            if result.status == "diverged":
                record = make_record(spec, "diverged", pretrain=result.to_dict(), reason=result.reason, env=env)
            else:
                evaluation = evaluate_frozen(spec, method, folder, f"step{result.steps}", device)
                health = run_health(spec, result.to_dict(), evaluation, read_metrics(folder / "metrics.jsonl"),
                                    pretrains=method.pretrains)
                record = make_record(spec, "done", pretrain=result.to_dict(), evaluation=evaluation, env=env,
                                     health=health)
    except Exception as error:
        if rank() == 0:
            write_record(results_root, make_record(spec, "failed", reason=f"{type(error).__name__}: {error}", env=env))
        raise
    write_record(results_root, record)
    return record
