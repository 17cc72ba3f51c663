"""Frozen-backbone evaluation of one trained method: cached features -> linear probe, kNN, few-shot.

A run whose spec names `model.init_from` ("EXPERIMENT/RUN_ID") evaluates that finished run's weights
instead of its own (transfer: pretrain on ImageNet-1k, probe on DTD); `load_source_method` finds them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch

from evaluation.features import cached, embedding_spectrum, extract_features
from evaluation.knn import knn_accuracy
from evaluation.linear_probe import few_shot_probe, holdout_split, linear_probe
from evaluation.record import read_record, record_path, run_dir
from lejepa.checkpoint import load_latest_checkpoint
from lejepa.data import get_dataset
from lejepa.data.sampling import balanced_subset
from lejepa.methods import parse_options
from lejepa.spec import RunSpec


class SourceRunError(RuntimeError):
    """The run named by model.init_from cannot give its weights (not finished, or a different model)."""


def load_source_method(spec: RunSpec, results_root: Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The method of `spec` holding the final weights of the run `spec.model.init_from` names, and where
    they came from ({"dataset", "experiment", "run_id", "step"}: the record's evaluation.transfer_from).
    The source must be done and built as this run is: same method options, model and resolution."""
    from lejepa.train import build_method

    reference = spec.model.init_from
    experiment, _, run_id = reference.partition("/")
    path = record_path(results_root, experiment, run_id)
    record = read_record(path) if path.exists() else {"status": "no record"}
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
    state = load_latest_checkpoint(run_dir(results_root, experiment, run_id) / "ckpt", run_id)
    if state is None:
        raise SourceRunError(f"model.init_from {reference}: the source run is done but has no checkpoint under "
                             f"{run_dir(results_root, experiment, run_id) / 'ckpt'} (a method that does not pretrain?)")
    method = build_method(spec, _image_size(spec))
    method.load_state_dict(state["model"])
    origin = {"dataset": source.data.name, "experiment": experiment, "run_id": run_id, "step": state["step"]}
    return method.to(device), origin


def _image_size(spec: RunSpec) -> int:
    return spec.data.image_size or get_dataset(spec.data.name).image_size


def _feature_choices(feature_dim: int, embed_dim: int) -> dict[str, slice]:
    """ViT features are [CLS of block -2, CLS of block -1]: also try the last block alone."""
    choices = {"all": slice(None)}
    if feature_dim == 2 * embed_dim:
        choices["last_block"] = slice(embed_dim, None)
    return choices


def evaluate_frozen(spec: RunSpec, method, run_dir: Path, weights_key: str, device: torch.device) -> dict:
    """Probe the frozen backbone of `method`; `weights_key` names the weights for the feature cache."""
    started = time.perf_counter()
    info = get_dataset(spec.data.name)
    image_size = _image_size(spec)
    backbone = method.evaluation_backbone() if hasattr(method, "evaluation_backbone") else method.backbone
    backbone.eval()
    if getattr(method, "features_from_pixels", False):
        encode, choices = (lambda images: images.flatten(1)), {"all": slice(None)}
    else:
        encode = backbone.features
        choices = _feature_choices(backbone.feature_dim, backbone.embed_dim)

    def split_features(split: str, limit: int | None):
        dataset = info.load(split, spec.data.root)
        indices = balanced_subset(dataset.targets, limit, spec.seed)
        return cached(
            Path(run_dir) / "features" / f"{split}.pt", f"{weights_key}:{len(indices)}",
            lambda: extract_features(encode, dataset, indices, image_size, info.mean, info.std,
                                     spec.eval.batch_size, device, spec.data.num_workers),
        )

    train_x, train_y = split_features(info.train_split, spec.data.train_limit)
    test_x, test_y = split_features(info.test_split, spec.data.test_limit)
    result: dict = {
        "feature_dim": train_x.shape[1], "train_images": len(train_x), "test_images": len(test_x),
        "embedding_spectrum": embedding_spectrum(test_x),
    }
    e = spec.eval
    if e.linear:
        probe = linear_probe(
            train_x, train_y, test_x, test_y, info.num_classes, lrs=e.linear_lrs, choices=choices,
            epochs=e.linear_epochs, batch_size=e.linear_batch_size, weight_decay=e.linear_weight_decay,
            holdout_fraction=e.holdout_fraction, seed=spec.seed,
        )
        result.update(linear_top1=probe.top1, linear_top5=probe.top5,
                      linear_head={"lr": probe.lr, "features": probe.features, "holdout_top1": probe.holdout_top1})
        if e.few_shot:
            fit_images = len(train_x) - len(holdout_split(train_y, e.holdout_fraction, spec.seed)[1])
            steps = e.linear_epochs * math.ceil(fit_images / e.linear_batch_size)  # the full-data probe's steps
            result["few_shot"] = {
                str(shots): few_shot_probe(
                    train_x, train_y, test_x, test_y, info.num_classes, shots, e.few_shot_draws, lr=probe.lr,
                    features=choices[probe.features], steps=steps, batch_size=e.linear_batch_size,
                    weight_decay=e.linear_weight_decay, seed=spec.seed,
                ) for shots in e.few_shot
            }
    if e.knn:
        for k, accuracy in knn_accuracy(train_x, train_y, test_x, test_y, info.num_classes, e.knn_k,
                                        e.knn_temperature).items():
            result[f"knn_top1@{k}"] = accuracy
    result["wall_seconds"] = time.perf_counter() - started
    return result
