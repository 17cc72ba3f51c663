"""Frozen-backbone evaluation of one trained method: cached features -> linear probe, kNN, few-shot."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from evaluation.features import cached, embedding_spectrum, extract_features
from evaluation.knn import knn_accuracy
from evaluation.linear_probe import few_shot_probe, linear_probe
from lejepa.data import get_dataset
from lejepa.data.common import loader_workers
from lejepa.data.sampling import balanced_subset
from lejepa.spec import RunSpec


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
                                     spec.eval.batch_size, device, loader_workers(spec.data.num_workers)),
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
                      linear_head={"name": probe.name, "norm": probe.norm, "lr": probe.lr, "features": probe.features,
                                   "holdout_top1": probe.holdout_top1,
                                   "holdout_cross_entropy": probe.holdout_cross_entropy, "steps": probe.steps})
        if e.few_shot:
            steps = probe.steps  # the full-data probe's optimiser steps
            result["few_shot"] = {
                str(shots): few_shot_probe(
                    train_x, train_y, test_x, test_y, info.num_classes, shots, e.few_shot_draws, lr=probe.lr,
                    features=choices[probe.features], steps=steps, batch_size=e.linear_batch_size,
                    weight_decay=e.linear_weight_decay, seed=spec.seed, norm=probe.norm,
                ) for shots in e.few_shot
            }
    if e.knn:
        for k, accuracy in knn_accuracy(train_x, train_y, test_x, test_y, info.num_classes, e.knn_k,
                                        e.knn_temperature).items():
            result[f"knn_top1@{k}"] = accuracy
    result["wall_seconds"] = time.perf_counter() - started
    return result
