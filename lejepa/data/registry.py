"""Dataset registry: adding a dataset is one decorated loader function (docs/datasets.md section 1).

A loader takes (root, split) and returns a map-style dataset of (image, label) pairs, where image is a
PIL image or a uint8 tensor (C x H x W), and which exposes `targets` (a list of int labels). Nothing is
downloaded: a missing dataset raises DatasetNotFound saying where it looked and how to get it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lejepa.names import did_you_mean, register_once

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DatasetNotFound(FileNotFoundError):
    """The dataset's files are not where the loader looked."""

    def __init__(self, name: str, root: Path, looked_for: str, how_to_get: str):
        super().__init__(
            f"dataset '{name}': {looked_for} not found under {root}. To get it: {how_to_get}. "
            f"Then point the run at it with data.root=/path/to/{name} (or set $LEJEPA_DATA_ROOT)."
        )


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    image_size: int  # training resolution when the spec does not set one
    splits: tuple[str, ...]  # the first is pretraining/probe-train, the last is test
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    default_root: str  # absolute, or relative to $LEJEPA_DATA_ROOT (default ~/data)
    how_to_get: str
    loader: Callable[[Path, str], object]
    # Channels the images really have. Grey sets are served with their one channel copied three times (what
    # the backbones take); the raw-pixels reference reads one copy (784 values for Fashion-MNIST, not 2,352).
    channels: int = 3

    @property
    def train_split(self) -> str:
        return self.splits[0]

    @property
    def test_split(self) -> str:
        return self.splits[-1]

    def resolve_root(self, root: str | None) -> Path:
        if root:
            return Path(root).expanduser()
        base = Path(os.environ.get("LEJEPA_DATA_ROOT", "~/data")).expanduser()
        return base / self.default_root  # an absolute default_root ignores base

    def load(self, split: str, root: str | None = None):
        if split not in self.splits:
            raise ValueError(f"dataset '{self.name}' has splits {list(self.splits)}, not '{split}'")
        return self.loader(self.resolve_root(root), split)


DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(
    name: str,
    *,
    num_classes: int,
    image_size: int,
    splits: tuple[str, ...] = ("train", "test"),
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    default_root: str | None = None,
    how_to_get: str,
    channels: int = 3,
):
    def decorate(loader: Callable[[Path, str], object]):
        register_once(DATASETS, "dataset", name, DatasetInfo(
            name, num_classes, image_size, tuple(splits), tuple(mean), tuple(std),
            default_root or name, how_to_get, loader, channels,
        ))
        return loader

    return decorate


def get_dataset(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset '{name}'{did_you_mean(name, DATASETS)} (known: {', '.join(sorted(DATASETS))})")
    return DATASETS[name]
