"""Galaxy10 DECaLS (Leung & Bovy, astroNN): 17,736 colour galaxy images of 256 x 256 px in 10 morphology
classes, shipped as one HDF5 file with datasets "images" (N, 256, 256, 3) uint8 and "ans" (N,) labels.

The file has no train/test split. The paper trains on 11,008 images (Table 5; docs/datasets.md section 3)
without saying which, so one is drawn here with that size: per class a seeded permutation, the first
share to train, shares proportional to the class sizes (largest remainder), 11,008 of the 17,736 in all
and the other 6,728 for test. It depends only on the labels, so every user of the registry gets the same
split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lejepa.data.common import ArrayImageDataset, locate
from lejepa.data.registry import register_dataset

GALAXY10_FILE = "Galaxy10_DECals.h5"
GALAXY10_HOW = (
    f"download {GALAXY10_FILE} (2.5 GB) from https://astro.utoronto.ca/~hleung/shared/Galaxy10/{GALAXY10_FILE} "
    "(linked from https://github.com/henrysky/Galaxy10; astroNN's load_galaxy10() fetches the same file)"
)
RELEASE_IMAGES = 17_736
PAPER_TRAIN_IMAGES = 11_008  # paper Table 5, "# train. samples"
SPLIT_SEED = 0


def proportional_split(labels: np.ndarray, train_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices with exactly `train_images` in train, each class contributing its share
    of them (floor of n_c * train_images / N, the leftover images to the largest remainders, ties to the
    lower class), chosen by a seeded permutation within the class."""
    classes, counts = np.unique(labels, return_counts=True)
    quotas = counts * train_images / len(labels)
    shares = np.floor(quotas).astype(int)
    leftover = train_images - shares.sum()
    order = sorted(range(len(classes)), key=lambda i: (-(quotas[i] - shares[i]), i))
    shares[order[:leftover]] += 1
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, share in zip(classes, shares):
        members = rng.permutation(np.flatnonzero(labels == label))
        train.append(members[:share])
        test.append(members[share:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def train_images_for(total: int) -> int:
    """The paper's share of a release of `total` images: 11,008 for the full 17,736."""
    return round(total * PAPER_TRAIN_IMAGES / RELEASE_IMAGES)


class HDF5Images:
    """Rows of an HDF5 image dataset, picked by `indices`. The file is opened on first use in each
    process (checked by pid): an h5py handle inherited through fork is not safe in data-loader workers."""

    def __init__(self, path: Path, key: str, indices: np.ndarray):
        self.path, self.key, self.indices = path, key, np.asarray(indices)
        self._file, self._pid = None, None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> np.ndarray:
        if self._file is None or self._pid != os.getpid():
            import h5py

            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file[self.key][int(self.indices[index])]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_pid": None}


@register_dataset(
    "galaxy10_decals",
    num_classes=10,
    # Half the native 256 px: the galaxy sits in the centre and the outer sky is mostly noise, and 128 px
    # quarters the compute; set data.image_size=256 to train at full resolution.
    image_size=128,
    # ImageNet statistics: the dataset's own were not computed for this registry.
    how_to_get=GALAXY10_HOW,
)
def galaxy10_decals(root: Path, split: str) -> ArrayImageDataset:
    import h5py

    if root.is_file():  # data.root may name the file itself
        path = root
    else:
        path = locate("galaxy10_decals", root, [""], [GALAXY10_FILE], GALAXY10_HOW) / GALAXY10_FILE
    with h5py.File(path, "r") as f:
        missing = [key for key in ("images", "ans") if key not in f]
        if missing:
            raise ValueError(f"{path} lacks the HDF5 dataset(s) {missing}; found {list(f.keys())}")
        shape = f["images"].shape
        labels = np.asarray(f["ans"][:], dtype=np.int64)
    if len(shape) != 4 or shape[-1] != 3 or shape[0] != len(labels):
        raise ValueError(f"{path}: 'images' has shape {shape} and 'ans' {len(labels)} labels; expected (N, H, W, 3)")
    train, test = proportional_split(labels, train_images_for(len(labels)), SPLIT_SEED)
    chosen = train if split == "train" else test
    return ArrayImageDataset(HDF5Images(path, "images", chosen), labels[chosen].tolist())
