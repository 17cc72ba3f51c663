"""Transfer: a run whose spec names `model.init_from` ("EXPERIMENT/RUN_ID") evaluates that finished run's
weights instead of its own (pretrain on ImageNet-1k, probe on DTD)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from evaluation.record import RecordError, read_record, record_path, run_dir
from lejepa.checkpoint import load_final_weights
from lejepa.data import get_dataset
from lejepa.methods import build_method, parse_options
from lejepa.spec import RunSpec


class SourceRunError(RuntimeError):
    """The run named by model.init_from cannot give its weights (not finished, or a different model)."""


def load_source_method(spec: RunSpec, results_root: Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The method of `spec` holding the final weights of the run `spec.model.init_from` names, and where
    they came from ({"dataset", "experiment", "run_id", "step"}: the record's evaluation.transfer_from).
    The source must be done and built as this run is: same method options, model and resolution."""
    reference = spec.model.init_from
    experiment, _, run_id = reference.partition("/")
    path = record_path(results_root, experiment, run_id)
    try:
        record = read_record(path, expect_run_id=run_id) if path.exists() else {"status": "no record"}
    except RecordError as error:
        record = {"status": f"unusable record: {error}"}
    status = record.get("status")
    if status != "done":
        raise SourceRunError(
            f"model.init_from {reference}: the source run is not done ({status}; looked for {path}). Launch the "
            f"manifest of experiment '{experiment}' first (`lejepa launch MANIFEST`), then this one."
        )
    source = RunSpec.from_dict(record["spec"])
    mismatches = [
        f"{what}: source {theirs}, this run {mine}" for what, theirs, mine in (
            ("method", parse_options(source.method)[1], parse_options(spec.method)[1]),
            ("method.name", source.method_name, spec.method_name),
            ("model", dataclasses.replace(source.model, init_from=None), dataclasses.replace(spec.model, init_from=None)),
            ("image size", _image_size(source), _image_size(spec)),
        ) if theirs != mine
    ]
    if mismatches:
        raise SourceRunError(f"model.init_from {reference}: this run cannot hold the source's weights: "
                             + "; ".join(mismatches))
    state = load_final_weights(run_dir(results_root, experiment, run_id), run_id)
    if state is None:
        raise SourceRunError(f"model.init_from {reference}: the source run is done but has no checkpoint under "
                             f"{run_dir(results_root, experiment, run_id) / 'ckpt'} (a method that does not pretrain?)")
    method = build_method(spec, _image_size(spec))
    method.load_state_dict(state["model"])
    origin = {"dataset": source.data.name, "experiment": experiment, "run_id": run_id, "step": state["step"],
              "pretrain_epochs": source.train.epochs}
    return method.to(device), origin


def _image_size(spec: RunSpec) -> int:
    return spec.data.image_size or get_dataset(spec.data.name).image_size
