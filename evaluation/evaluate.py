"""Frozen-backbone evaluation of one trained method: features extracted once (every rank), then the run's
probes (evaluation/probes/, eval.probes) on rank 0, each writing its own record section."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from evaluation.features import cached, embedding_spectrum, extract_features
from evaluation.probes import ProbeContext, SplitFeatures, build_probes
from lejepa.data import get_dataset
from lejepa.data.common import loader_workers
from lejepa.data.sampling import balanced_subset
from lejepa.distributed import rank
from lejepa.spec import RunSpec


def _image_size(spec: RunSpec) -> int:
    return spec.data.image_size or get_dataset(spec.data.name).image_size


def _feature_choices(feature_dim: int, embed_dim: int) -> dict[str, slice]:
    """ViT features are [CLS of block -2, CLS of block -1]: also try the last block alone."""
    choices = {"all": slice(None)}
    if feature_dim == 2 * embed_dim:
        choices["last_block"] = slice(embed_dim, None)
    return choices


def _uses_bf16(spec: RunSpec, device: torch.device) -> bool:
    """bf16 autocast on CUDA, as in training, unless the run asks for fp32."""
    return device.type == "cuda" and spec.train.precision != "fp32"


def evaluate_frozen(spec: RunSpec, method, run_dir: Path, weights_key: str, device: torch.device,
                    online_probe=None) -> dict | None:
    """Probe the frozen backbone of `method`; `weights_key` names the weights for the feature cache. Every
    rank of the run calls this (feature extraction is sharded); rank 0 returns the record's evaluation
    section, the others None. `online_probe`: the head trained during pretraining (lejepa/online_probe.py)."""
    started = time.perf_counter()
    probes = build_probes(spec)
    info = get_dataset(spec.data.name)
    image_size, bf16 = _image_size(spec), _uses_bf16(spec, device)
    backbone = method.evaluation_backbone() if hasattr(method, "evaluation_backbone") else method.backbone
    backbone.eval()
    online = online_probe is not None and any(p.name == "online_linear" for p in probes)
    pixels = getattr(method, "features_from_pixels", False)
    if pixels:
        kind, choices = "pixels", {"all": slice(None)}

        def encode(images, pooled=False):  # a grey set's copies of its one channel are read once
            return {"frozen": images[:, :info.channels].flatten(1)}
    else:
        kind = "tokens" if backbone.is_token_model else "pooled"
        choices = _feature_choices(backbone.feature_dim, backbone.embed_dim)

        def encode(images, pooled=False):
            frozen, forward = backbone.readouts(images)
            return {"frozen": frozen, "pooled": forward} if pooled else {"frozen": frozen}

    def split_features(split: str, limit: int | None, name: str, encoder, readouts: str):
        dataset = info.load(split, spec.data.root)
        indices = balanced_subset(dataset.targets, limit, spec.seed)
        key = f"{weights_key}:{len(indices)}:{readouts}:{'bf16' if bf16 else 'fp32'}"
        if pixels:  # a cache of all three copies (before grey sets were read once) is not this one
            key += f":{info.channels}ch"
        return cached(
            Path(run_dir) / "features" / f"{name}.pt", key,
            lambda: extract_features(encoder, dataset, indices, image_size, info.mean, info.std,
                                     spec.eval.batch_size, device, loader_workers(spec.data.num_workers), bf16),
        )

    # The online head trained on the trained backbone's forward(): read it in the same pass when that backbone
    # is the evaluated one, else (an averaged teacher is evaluated) in a pass of its own over test.
    same_pass = online and backbone is method.backbone
    train = split_features(info.train_split, spec.data.train_limit, "train", encode, "frozen")
    test = split_features(info.test_split, spec.data.test_limit, "test",
                          lambda x: encode(x, pooled=same_pass), "frozen,pooled" if same_pass else "frozen")
    student = None
    if online and not same_pass:
        method.backbone.eval()
        student = split_features(info.test_split, spec.data.test_limit, "test_online",
                                 lambda x: {"pooled": method.backbone(x)}, "pooled")
    if rank() != 0:
        return None
    pooled = test[0].get("pooled") if student is None else student[0]["pooled"]
    context = ProbeContext(spec, info.num_classes, SplitFeatures(train[0]["frozen"], train[1]),
                           SplitFeatures(test[0]["frozen"], test[1], pooled), choices, kind, device, online_probe)
    result: dict = {
        "feature_dim": context.train.frozen.shape[1], "train_images": len(context.train.labels),
        "test_images": len(context.test.labels), "feature_kind": kind, "feature_precision": "bf16" if bf16 else "fp32",
        "embedding_spectrum": embedding_spectrum(context.test.frozen), "probes": {},
    }
    for probe in probes:
        probe_started = time.perf_counter()
        section = probe.run(context)
        result["probes"][probe.name] = {**section, "wall_seconds": time.perf_counter() - probe_started}
    result["wall_seconds"] = time.perf_counter() - started
    return result
