"""Frozen features, extracted once without augmentation and cached per run (docs/evaluation.md section 1)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from lejepa.checkpoint import set_aside
from lejepa.files import atomic_write_bytes
from lejepa.views import eval_transform


class _Transformed(torch.utils.data.Dataset):
    def __init__(self, dataset, indices: np.ndarray, transform):
        self.dataset, self.indices, self.transform = dataset, indices, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, label = self.dataset[int(self.indices[i])]
        return self.transform(image), label


@torch.no_grad()
def extract_features(
    encode, dataset, indices: np.ndarray, image_size: int, mean, std, batch_size: int, device: torch.device,
    num_workers: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """encode(images) -> (B, F) for each image of `dataset[indices]`; returns float32 features and labels."""
    loader = torch.utils.data.DataLoader(
        _Transformed(dataset, indices, eval_transform(image_size, mean, std)),
        batch_size=batch_size, shuffle=False, num_workers=num_workers,
    )
    features, labels = [], []
    for images, batch_labels in loader:
        features.append(encode(images.to(device)).float().cpu())
        labels.append(batch_labels)
    return torch.cat(features), torch.cat(labels)


def cached(path: Path, key: str, compute) -> tuple[torch.Tensor, torch.Tensor]:
    """Load features saved under `key` (which names the weights they came from), else compute and save.
    A cache that does not load (empty, truncated, foreign) is set aside, kept, and recomputed."""
    if path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(saved, dict) or not {"key", "features", "labels"} <= set(saved):
                raise ValueError("not a feature cache")
        except Exception as error:  # noqa: BLE001  any unreadable file: recomputing is always possible
            aside = set_aside(path)
            warnings.warn(f"feature cache {path} is unreadable ({error}); kept as {aside.name}, recomputing",
                          stacklevel=2)
        else:
            if saved["key"] == key:
                return saved["features"], saved["labels"]
    features, labels = compute()
    atomic_write_bytes(path, lambda f: torch.save({"key": key, "features": features, "labels": labels}, f))
    return features, labels


def embedding_spectrum(features: torch.Tensor, keep: int = 512) -> list[float]:
    """Eigenvalues of the feature covariance, descending: flat means isotropic, a cliff means collapse."""
    centred = features.double() - features.double().mean(0)
    covariance = centred.T @ centred / max(1, len(features) - 1)
    return torch.linalg.eigvalsh(covariance).flip(0)[:keep].tolist()
