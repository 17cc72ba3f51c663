"""ImageNet-1k, ImageNet-100 and Imagenette as class-per-folder trees (root/train/<wnid>/*.JPEG, root/val/...).

Labels follow the sorted WordNet ids of a fixed class list (the train folders for ImageNet-1k, a shipped
list for the subsets), never the folders a split happens to contain: a val/ missing a class must not
shift every label after it.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from lejepa.data.common import ImageFileDataset, locate
from lejepa.data.registry import DatasetNotFound, register_dataset
from lejepa.data.shards import ShardDataset, is_shard_folder

IMAGENET_HOW = (
    "get ILSVRC2012 from https://image-net.org/download (or Kaggle's imagenet-object-localization-challenge) "
    "and unpack it as train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (sort the flat val/ folder into class folders, "
    "e.g. with the widely used valprep.sh)"
)
IMAGENET100_LIST = "imagenet100_classes.txt"  # beside this module
IMAGENET100_HOW = f"{IMAGENET_HOW}; ImageNet-100 reads the 100 classes of lejepa/data/{IMAGENET100_LIST} from it"
IMAGENETTE_HOW = (
    "download imagenette2.tgz (or imagenette2-320.tgz / imagenette2-160.tgz) from "
    "https://github.com/fastai/imagenette and unpack it"
)
# Imagenette's ten ImageNet classes (tench, English springer, cassette player, chain saw, church,
# French horn, garbage truck, gas pump, golf ball, parachute).
IMAGENETTE_WNIDS = (
    "n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
    "n03394916", "n03417042", "n03425413", "n03445777", "n03888257",
)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def imagenet100_classes() -> list[str]:
    """The 100 WordNet ids of ImageNet-100 (CMC's subset), sorted: label k is the k-th id."""
    text = resources.files("lejepa.data").joinpath(IMAGENET100_LIST).read_text()
    wnids = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(wnids) != 100 or len(set(wnids)) != 100:
        raise ValueError(f"lejepa/data/{IMAGENET100_LIST} must list 100 distinct WordNet ids, found {len(wnids)}")
    return sorted(wnids)


def class_folder_dataset(name: str, split_dir: Path, classes: list[str]) -> ImageFileDataset:
    """Every image under split_dir/<class>/ (recursively, sorted) for the given classes, labelled by
    position in `classes`. A class with no folder is an error: its images would silently be missing."""
    missing = [c for c in classes if not (split_dir / c).is_dir()]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DatasetNotFound(
            name, split_dir, f"{len(missing)} of the {len(classes)} class folders ({shown})",
            "the split must hold one folder per class, named by WordNet id",
        )
    paths, labels = [], []
    for label, wnid in enumerate(classes):
        # os.walk, not Path.rglob: plain strings and no stat per file, which counts at 1.28 M images.
        for folder, _, names in sorted(os.walk(split_dir / wnid, followlinks=True)):
            files = [os.path.join(folder, n) for n in sorted(names) if n.lower().endswith(IMAGE_EXTENSIONS)]
            paths += files
            labels += [label] * len(files)
    return ImageFileDataset(paths, labels, classes)


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


@register_dataset(
    "imagenet1k",
    num_classes=1000,
    image_size=224,
    splits=("train", "val"),
    default_root="imagenet",
    how_to_get=IMAGENET_HOW,
)
def imagenet1k(root: Path, split: str) -> ImageFileDataset:
    """ILSVRC-2012: 1.28 M train and 50,000 val images; val serves as the test split, as in every
    SSL paper. Classes are the 1,000 folders of train/, in sorted order (the standard label order).
    A root written by `python -m lejepa.data.shards imagenet1k` is read from its shards."""
    if is_shard_folder(root / split):
        return ShardDataset(root / split, dataset="imagenet1k")
    folder = locate("imagenet1k", root, [""], ["train", split], IMAGENET_HOW)
    classes = _subfolders(folder / "train")
    if len(classes) != 1000:
        raise ValueError(
            f"dataset 'imagenet1k': {folder / 'train'} has {len(classes)} class folders, expected 1000; "
            "for a 100-class subset use 'imagenet100'"
        )
    if split == "val" and not _subfolders(folder / "val"):
        raise ValueError(
            f"dataset 'imagenet1k': {folder / 'val'} has no class folders; sort its images into "
            "val/<wnid>/ folders (e.g. with valprep.sh) first"
        )
    return class_folder_dataset("imagenet1k", folder / split, classes)


@register_dataset(
    "imagenet100",
    num_classes=100,
    image_size=224,
    splits=("train", "val"),
    default_root="imagenet",
    how_to_get=IMAGENET100_HOW,
)
def imagenet100(root: Path, split: str) -> ImageFileDataset:
    """ImageNet-100 (CMC / solo-learn): the classes of lejepa/data/imagenet100_classes.txt read
    from an ImageNet-1k tree, or from a tree already cut down to those 100 folders, or from shards written
    by `python -m lejepa.data.shards imagenet100`."""
    if is_shard_folder(root / split):
        return ShardDataset(root / split, dataset="imagenet100")
    folder = locate("imagenet100", root, [""], [split], IMAGENET100_HOW)
    return class_folder_dataset("imagenet100", folder / split, imagenet100_classes())


def _download_imagenette(root: Path) -> None:
    from torchvision import datasets

    datasets.Imagenette(str(root), split="val", download=True)


@register_dataset(
    "imagenette",
    num_classes=10,
    image_size=128,  # the official minimal example's resolution (MINIMAL.md; docs/datasets.md section 4)
    splits=("train", "val"),
    default_root="imagenette",
    how_to_get=IMAGENETTE_HOW,
)
def imagenette(root: Path, split: str) -> ImageFileDataset:
    """Imagenette (the paper's ImageNet-10): 9,469 train and 3,925 val images of ten easy ImageNet
    classes. Any of the three archive sizes works; the full-size one is looked for first. Shards written
    by `python -m lejepa.data.shards imagenette` are read as well."""
    if is_shard_folder(root / split):
        return ShardDataset(root / split, dataset="imagenette")
    folder = locate("imagenette", root, ["imagenette2", "imagenette2-320", "imagenette2-160", ""], [split],
                    IMAGENETTE_HOW, _download_imagenette)
    return class_folder_dataset("imagenette", folder / split, sorted(IMAGENETTE_WNIDS))
