"""CIFAR-10/100 (python pickle batches) and STL-10 (raw binary), read straight from their archives' files.

torchvision's own classes re-hash every file (md5) on each construction, which costs seconds per load
and rejects any file that is not byte-identical to the release; reading the documented formats directly
keeps loading instant and lets tests use tiny files in the same format. torchvision is still used for
the opt-in download, which unpacks into exactly the layout read here.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from lejepa.data.common import ArrayImageDataset, ConcatImageDataset, locate
from lejepa.data.registry import register_dataset

CIFAR10_HOW = "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it"
CIFAR100_HOW = "download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it"
STL10_HOW = "download stl10_binary.tar.gz from https://cs.stanford.edu/~acoates/stl10/ and unpack it"


def _unpickle(path: Path) -> dict:
    # The batches were pickled by Python 2; latin1 maps its byte strings to str keys losslessly.
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def read_cifar_batches(folder: Path, batch_names: list[str], label_key: str) -> tuple[np.ndarray, list[int]]:
    """Concatenate pickle batches: 'data' is N x 3072 uint8 (1024 red, then green, then blue values,
    row-major 32 x 32 each); `label_key` holds the int labels. Returns N x 32 x 32 x 3 images."""
    images, labels = [], []
    for batch_name in batch_names:
        batch = _unpickle(folder / batch_name)
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(int(y) for y in batch[label_key])
    return np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1)), labels


def _cifar_class_names(path: Path, key: str) -> list[str]:
    return list(_unpickle(path)[key]) if path.exists() else []


def _download_cifar(which: str):
    def fetch(root: Path) -> None:
        from torchvision import datasets

        getattr(datasets, which)(str(root), download=True)

    return fetch


@register_dataset(
    "cifar10",
    num_classes=10,
    image_size=32,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    how_to_get=CIFAR10_HOW,
)
def cifar10(root: Path, split: str) -> ArrayImageDataset:
    """CIFAR-10: 50,000 train / 10,000 test images of 32 x 32 px, 10 classes."""
    batches = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    folder = locate("cifar10", root, ["cifar-10-batches-py", ""], batches, CIFAR10_HOW, _download_cifar("CIFAR10"))
    images, labels = read_cifar_batches(folder, batches, "labels")
    return ArrayImageDataset(images, labels, _cifar_class_names(folder / "batches.meta", "label_names"))


@register_dataset(
    "cifar100",
    num_classes=100,
    image_size=32,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    how_to_get=CIFAR100_HOW,
)
def cifar100(root: Path, split: str) -> ArrayImageDataset:
    """CIFAR-100 with its 100 fine labels (the 20 coarse super-classes are not used)."""
    folder = locate("cifar100", root, ["cifar-100-python", ""], [split], CIFAR100_HOW, _download_cifar("CIFAR100"))
    images, labels = read_cifar_batches(folder, [split], "fine_labels")
    return ArrayImageDataset(images, labels, _cifar_class_names(folder / "meta", "fine_label_names"))


STL10_IMAGE_BYTES = 3 * 96 * 96


def read_stl10_images(path: Path) -> np.ndarray:
    """Memory-map an STL-10 *_X.bin file: 96 x 96 x 3 uint8 per image, each channel stored column by
    column (Fortran order). Returns an N x H x W x 3 view; nothing is read until an image is used."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    if raw.size % STL10_IMAGE_BYTES:
        raise ValueError(f"{path} holds {raw.size} bytes, not a whole number of 3 x 96 x 96 images")
    return raw.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)  # (n, channel, column, row) -> (n, row, col, ch)


class Stl10Images:
    """The images of one *_X.bin file, memory-mapped on first use in each process. Pickling (data-loader
    workers under spawn) sends the path, not the 2.6 GB the unlabeled file would copy."""

    def __init__(self, path: Path):
        self.path = path
        size = path.stat().st_size
        if size % STL10_IMAGE_BYTES:
            raise ValueError(f"{path} holds {size} bytes, not a whole number of 3 x 96 x 96 images")
        self.count = size // STL10_IMAGE_BYTES
        self._images: np.ndarray | None = None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        if self._images is None:
            self._images = read_stl10_images(self.path)
        return self._images[index]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_images": None}


def read_stl10_labels(path: Path) -> list[int]:
    """*_y.bin: one uint8 per image, classes numbered 1..10."""
    return [int(y) - 1 for y in np.fromfile(path, dtype=np.uint8)]


def _download_stl10(root: Path) -> None:
    from torchvision import datasets

    datasets.STL10(str(root), split="test", download=True)


@register_dataset(
    "stl10",
    num_classes=10,
    image_size=96,
    splits=("train", "unlabeled", "train+unlabeled", "test"),
    mean=(0.4467, 0.4398, 0.4066),
    std=(0.2603, 0.2566, 0.2713),
    how_to_get=STL10_HOW,
)
def stl10(root: Path, split: str) -> ArrayImageDataset | ConcatImageDataset:
    """STL-10: 5,000 labelled train, 100,000 unlabeled (label -1) and 8,000 test images of 96 x 96 px.
    The registry's train split is the labelled one, so probes never see -1 labels; pretraining on the
    unlabeled images is a choice of split ('unlabeled' or 'train+unlabeled')."""
    parts = {"train": ["train"], "unlabeled": ["unlabeled"], "train+unlabeled": ["train", "unlabeled"],
             "test": ["test"]}[split]
    required = [f"{p}_X.bin" for p in parts] + [f"{p}_y.bin" for p in parts if p != "unlabeled"]
    folder = locate("stl10", root, ["stl10_binary", ""], required, STL10_HOW, _download_stl10)
    class_file = folder / "class_names.txt"
    classes = class_file.read_text().split() if class_file.exists() else []
    pieces = []
    for part in parts:
        images = Stl10Images(folder / f"{part}_X.bin")
        labels = [-1] * len(images) if part == "unlabeled" else read_stl10_labels(folder / f"{part}_y.bin")
        if len(labels) != len(images):
            raise ValueError(f"{folder}: {part}_X.bin has {len(images)} images, {part}_y.bin {len(labels)}")
        pieces.append(ArrayImageDataset(images, labels, classes))
    # Chained, not concatenated: concatenating would read the 2.6 GB unlabeled file into RAM.
    return pieces[0] if len(pieces) == 1 else ConcatImageDataset(pieces)
