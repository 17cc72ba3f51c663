"""Pieces shared by the dataset loaders: finding a dataset's folder, serving images, opt-in downloads.

Every loader returns a map-style dataset of (RGB PIL image, int label) whose `targets` list is read from
label files alone, so samplers and probes can see every label without decoding a single image.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lejepa.data.registry import DatasetNotFound

DOWNLOAD_ENV = "LEJEPA_ALLOW_DOWNLOAD"


class ImageFileDataset(torch.utils.data.Dataset):
    """Image files on disk with their labels; images are decoded on access and converted to RGB
    (the fine-grained sets and ImageNet contain a few grayscale and CMYK JPEGs).

    Paths and labels are served from numpy arrays, not Python lists: a data-loader worker forked from the
    training process shares the parent's memory until it writes to it, and reading an item of a list of
    1.28 M path strings writes its reference count, so each worker would slowly copy the whole list.
    `targets` stays a list of ints for the samplers and probes, which read it in the main process."""

    def __init__(self, paths: Sequence[str | Path], targets: Sequence[int], classes: Sequence[str] = ()):
        if len(paths) != len(targets):
            raise ValueError(f"{len(paths)} image paths but {len(targets)} labels")
        self._paths = np.array([os.fsencode(p) for p in paths], dtype=np.bytes_)
        self._labels = np.asarray(targets, dtype=np.int64).reshape(-1)
        self.targets = self._labels.tolist()
        self.classes = list(classes)

    @property
    def paths(self) -> list[str]:
        return [os.fsdecode(p) for p in self._paths]

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        with open(os.fsdecode(self._paths[index]), "rb") as f:
            image = Image.open(f)
            return image.convert("RGB"), int(self._labels[index])


class ArrayImageDataset(torch.utils.data.Dataset):
    """uint8 images in N x H x W x 3 order: an array, or any sequence of H x W x 3 arrays (a lazily
    opened memory map or HDF5 dataset)."""

    def __init__(self, images: Sequence[np.ndarray], targets: Sequence[int], classes: Sequence[str] = ()):
        if isinstance(images, np.ndarray) and (
            images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8
        ):
            raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} labels")
        self.images = images
        self.targets = [int(t) for t in targets]
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(np.ascontiguousarray(self.images[index])), self.targets[index]


class ConcatImageDataset(torch.utils.data.ConcatDataset):
    """Several datasets served as one, with their `targets` chained."""

    def __init__(self, parts: Sequence[torch.utils.data.Dataset]):
        super().__init__(parts)
        self.targets = [t for part in parts for t in part.targets]
        self.classes = list(getattr(parts[0], "classes", []))


def find_dataset_dir(root: Path, candidates: Sequence[str], required: Sequence[str]) -> Path | None:
    """The first of root/candidate (candidate "" is root itself) holding every `required` entry, else None.

    Datasets are found both where torchvision's download would put them (root/cifar-10-batches-py/...)
    and when the user points root straight at the unpacked folder.
    """
    for candidate in candidates:
        folder = root / candidate if candidate else root
        if all((folder / entry).exists() for entry in required):
            return folder
    return None


def download_allowed() -> bool:
    """Downloads happen only when the user opts in: runs must not fetch data behind anyone's back."""
    return os.environ.get(DOWNLOAD_ENV, "0").strip().lower() in ("1", "true", "yes")


def locate(
    name: str,
    root: Path,
    candidates: Sequence[str],
    required: Sequence[str],
    how_to_get: str,
    download: Callable[[Path], None] | None = None,
) -> Path:
    """Find the dataset folder under root, downloading into root first if allowed and possible;
    otherwise raise DatasetNotFound naming what was looked for and where."""
    folder = find_dataset_dir(root, candidates, required)
    if folder is None and download is not None and download_allowed():
        root.mkdir(parents=True, exist_ok=True)
        download(root)
        folder = find_dataset_dir(root, candidates, required)
    if folder is not None:
        return folder
    looked_for = " + ".join(required)
    subfolders = [f"{c}/" for c in candidates if c]
    if subfolders:
        looked_for += f" (directly or under {' or '.join(subfolders)})"
    if download is not None:
        how_to_get = f"{how_to_get}; or set {DOWNLOAD_ENV}=1 to let torchvision download it"
    raise DatasetNotFound(name, root, looked_for, how_to_get)


def read_lines(path: Path) -> list[str]:
    """Non-empty, stripped lines of a text file (label lists end with a newline or not)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def loader_workers(setting: int | str) -> int:
    """data.num_workers as a count: "auto" is the CPUs this process may use (what SLURM granted the task, or
    the affinity mask elsewhere) minus one for the training process itself."""
    if setting != "auto":
        return int(setting)
    granted = os.environ.get("SLURM_CPUS_PER_TASK")
    cpus = int(granted) if granted else len(os.sched_getaffinity(0))
    return max(0, cpus - 1)
