"""One run, start to finish: pretrain (or resume) -> frozen evaluation -> result record.

A run with model.init_from skips pretraining and evaluates the named run's final weights instead.

This is the callable every executor runs (local, debug, SLURM array task). It is idempotent: run again
after a crash or preemption, it resumes from the newest checkpoint and reuses cached features.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch.distributed as dist

from evaluation.evaluate import evaluate_frozen, load_source_method
from evaluation.record import environment, make_record, run_dir, write_record
from lejepa.spec import RunSpec
from lejepa.train import pretrain, resolve_device


def run_job(spec: RunSpec, results_root: str | Path, progress: bool = True) -> dict:
    folder = run_dir(Path(results_root), spec.experiment, spec.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps(spec.to_dict(), indent=2, sort_keys=True))  # for humans
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    device = resolve_device(spec.train.device)
    env = environment(str(device), world)
    try:
        if spec.model.init_from:  # no pretraining: another run's final weights, evaluated on this dataset
            if rank != 0:
                return {}
            method, source = load_source_method(spec, Path(results_root), device)
            evaluation = evaluate_frozen(spec, method, folder, f"{spec.model.init_from}:step{source['step']}", device)
            record = make_record(spec, "done", evaluation={**evaluation, "transfer_from": source}, env=env)
        else:
            method, result = pretrain(spec, folder, progress=progress)
            if rank != 0:  # rank 0 evaluates and writes the one record
                return {}
            if result.status == "diverged":
                record = make_record(spec, "diverged", pretrain=result.to_dict(), reason=result.reason, env=env)
            else:
                evaluation = evaluate_frozen(spec, method, folder, f"step{result.steps}", device)
                record = make_record(spec, "done", pretrain=result.to_dict(), evaluation=evaluation, env=env)
    except Exception as error:
        if rank == 0:
            write_record(results_root, make_record(spec, "failed", reason=f"{type(error).__name__}: {error}", env=env))
        raise
    write_record(results_root, record)
    return record
