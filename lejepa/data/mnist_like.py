"""Small grayscale datasets that work offline: Fashion-MNIST (IDX files) and scikit-learn digits."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from lejepa.data.registry import DatasetNotFound, register_dataset

FASHION_MNIST_HOW = (
    "apt-get install dataset-fashion-mnist (Debian), or the IDX .gz files from the Fashion-MNIST project"
)


class TensorImageDataset(torch.utils.data.Dataset):
    """In-memory uint8 images (N x H x W, grayscale) served as 3-channel tensors with int labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8))  # a writable copy
        self.targets = [int(y) for y in labels]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.images[index].unsqueeze(0).expand(3, -1, -1), self.targets[index]


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not: magic (0, 0, dtype, ndim), big-endian dims."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (header {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {array.size} bytes")
    return array.reshape(shape)


def _find_idx(root: Path, stem: str) -> Path | None:
    for candidate in (root / f"{stem}.gz", root / stem, root / "raw" / f"{stem}.gz", root / "raw" / stem):
        if candidate.exists():
            return candidate
    return None


@register_dataset(
    "fashion_mnist",
    num_classes=10,
    image_size=28,
    mean=(0.2860,) * 3,
    std=(0.3530,) * 3,
    channels=1,
    default_root="/usr/share/datasets/fashion-mnist",
    how_to_get=FASHION_MNIST_HOW,
)
def fashion_mnist(root: Path, split: str) -> TensorImageDataset:
    prefix = "train" if split == "train" else "t10k"
    images, labels = _find_idx(root, f"{prefix}-images-idx3-ubyte"), _find_idx(root, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        looked_for = f"{prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz] (directly or under raw/)"
        raise DatasetNotFound("fashion_mnist", root, looked_for, FASHION_MNIST_HOW)
    return TensorImageDataset(read_idx(images), read_idx(labels))


@register_dataset(
    "digits",
    num_classes=10,
    image_size=16,
    mean=(0.3,) * 3,
    std=(0.4,) * 3,
    channels=1,
    default_root="(bundled with scikit-learn)",
    how_to_get="pip install scikit-learn (the 8x8 digits ship inside it)",
)
def digits(root: Path, split: str) -> TensorImageDataset:
    """scikit-learn's 1,797 8x8 digits (values 0-16), scaled to uint8; a fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = np.round(data.images * (255.0 / 16.0)).astype(np.uint8)
    train_idx, test_idx = train_test_split(
        np.arange(len(images)), test_size=0.2, random_state=0, stratify=data.target
    )
    chosen = train_idx if split == "train" else test_idx
    return TensorImageDataset(images[chosen], data.target[chosen])
