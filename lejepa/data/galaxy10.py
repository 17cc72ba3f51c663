"""Galaxy10 DECaLS (Leung & Bovy, astroNN): 17,736 colour galaxy images of 256 x 256 px in 10 morphology
classes, shipped as one HDF5 file with datasets "images" (N, 256, 256, 3) uint8 and "ans" (N,) labels.

The file has no train/test split, so one is drawn here: per class, a seeded 10% of the images form the
test split. It depends only on the labels, so every user of the registry gets the same split.
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
TEST_FRACTION = 0.1
SPLIT_SEED = 0


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices holding out round(test_fraction * n_c) images of each class c,
    at least one wherever a class has two or more images."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(test_fraction * len(members))
        n_test = max(n_test, 1) if len(members) >= 2 else 0
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


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
    train, test = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
    chosen = train if split == "train" else test
    return ArrayImageDataset(HDF5Images(path, "images", chosen), labels[chosen].tolist())
