"""The fine-grained transfer sets of the paper's table (paper Table 2; docs/datasets.md section 2): Flowers102, Food101,
Oxford-IIIT Pets, DTD, FGVC-Aircraft and Stanford Cars.

Each reads the split and label files of the official release, unpacked in the folder layout that
torchvision's loaders use (and that their opt-in download produces), so a folder prepared for
torchvision works here unchanged. Labels come from those files alone; images are decoded on access.

Where a dataset has a validation split, the registry's first split is train+val: the linear probe picks
its head on a held-out part of the first split (docs/evaluation.md section 2), so the official val images are
not wasted, as in the usual transfer protocol (train on train+val, report on test). Flowers102 is the
exception: its first split is the official train split (1,020 images), the training set the paper's Table 5
states (docs/datasets.md section 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lejepa.data.common import ImageFileDataset, locate, read_lines
from lejepa.data.registry import register_dataset

FLOWERS_HOW = ("download 102flowers.tgz, imagelabels.mat and setid.mat from "
               "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ into flowers-102/ and unpack the .tgz there")
FOOD_HOW = "download food-101.tar.gz from https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/ and unpack it"
PETS_HOW = ("download images.tar.gz and annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ "
            "and unpack both into oxford-iiit-pet/")
DTD_HOW = ("download dtd-r1.0.1.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/dtd/ and unpack it into dtd/ "
           "(giving dtd/dtd/images and dtd/dtd/labels)")
AIRCRAFT_HOW = ("download fgvc-aircraft-2013b.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ "
                "and unpack it")
CARS_HOW = ("the original Stanford site is gone: get cars_train/, cars_test/, the devkit/ folder "
            "(cars_meta.mat, cars_train_annos.mat) and cars_test_annos_withlabels.mat from a mirror "
            "(e.g. the Kaggle copy) and arrange them as torchvision's StanfordCars expects, under stanford_cars/")


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat

    return loadmat(path, squeeze_me=True)


def _torchvision_download(class_name: str, **kwargs):
    def fetch(root: Path) -> None:
        from torchvision import datasets

        getattr(datasets, class_name)(str(root), download=True, **kwargs)

    return fetch


@register_dataset(
    "flowers102",
    num_classes=102,
    image_size=224,
    splits=("train", "val", "trainval", "test"),  # first: the paper's 1,020 training images (Table 5)
    how_to_get=FLOWERS_HOW,
)
def flowers102(root: Path, split: str) -> ImageFileDataset:
    """Oxford Flowers-102: imagelabels.mat gives each image_NNNNN.jpg a class 1..102 and setid.mat lists
    the image numbers of each split (10 train and 10 val images per class; the test set is the rest)."""
    folder = locate("flowers102", root, ["flowers-102", ""], ["jpg", "imagelabels.mat", "setid.mat"], FLOWERS_HOW,
                    _torchvision_download("Flowers102"))
    labels = np.atleast_1d(_loadmat(folder / "imagelabels.mat")["labels"]).astype(int)
    set_ids = _loadmat(folder / "setid.mat")
    keys = {"trainval": ["trnid", "valid"], "train": ["trnid"], "val": ["valid"], "test": ["tstid"]}[split]
    image_ids = [int(i) for key in keys for i in np.atleast_1d(set_ids[key])]
    paths = [folder / "jpg" / f"image_{i:05d}.jpg" for i in image_ids]
    return ImageFileDataset(paths, [labels[i - 1] - 1 for i in image_ids])


@register_dataset("food101", num_classes=101, image_size=224, how_to_get=FOOD_HOW)
def food101(root: Path, split: str) -> ImageFileDataset:
    """Food-101: meta/{train,test}.json map each class name to its images as "class/id" (no extension);
    classes are numbered in sorted name order."""
    folder = locate("food101", root, ["food-101", ""], [f"meta/{split}.json", "images"], FOOD_HOW,
                    _torchvision_download("Food101"))
    by_class = json.loads((folder / "meta" / f"{split}.json").read_text())
    classes = sorted(by_class)
    index = {name: i for i, name in enumerate(classes)}
    paths, labels = [], []
    for name, stems in by_class.items():
        paths += [folder / "images" / f"{stem}.jpg" for stem in stems]
        labels += [index[name]] * len(stems)
    return ImageFileDataset(paths, labels, classes)


@register_dataset(
    "oxford_pets",
    num_classes=37,
    image_size=224,
    splits=("trainval", "test"),
    how_to_get=PETS_HOW,
)
def oxford_pets(root: Path, split: str) -> ImageFileDataset:
    """Oxford-IIIT Pets, 37 breeds: annotations/{trainval,test}.txt lines read
    "<image id> <breed 1..37> <species 1 cat, 2 dog> <id within species>"."""
    folder = locate("oxford_pets", root, ["oxford-iiit-pet", ""], ["images", f"annotations/{split}.txt"], PETS_HOW,
                    _torchvision_download("OxfordIIITPet"))
    paths, labels, names = [], [], {}
    for line in read_lines(folder / "annotations" / f"{split}.txt"):
        if line.startswith("#"):  # list.txt-style headers, should a user point at a commented copy
            continue
        image_id, breed = line.split()[:2]
        paths.append(folder / "images" / f"{image_id}.jpg")
        labels.append(int(breed) - 1)
        names[int(breed) - 1] = image_id.rsplit("_", 1)[0]
    return ImageFileDataset(paths, labels, [names[k] for k in sorted(names)])


@register_dataset(
    "dtd",
    num_classes=47,
    image_size=224,
    splits=("trainval", "train", "val", "test"),
    how_to_get=DTD_HOW,
)
def dtd(root: Path, split: str) -> ImageFileDataset:
    """Describable Textures, first of its ten official splits: labels/{train,val,test}1.txt list images
    as "class/file.jpg"; classes are the sorted image folders."""
    parts = ["train", "val"] if split == "trainval" else [split]
    folder = locate("dtd", root, ["dtd/dtd", "dtd", ""], ["images", *(f"labels/{p}1.txt" for p in parts)], DTD_HOW,
                    _torchvision_download("DTD"))
    classes = sorted(p.name for p in (folder / "images").iterdir() if p.is_dir())
    index = {name: i for i, name in enumerate(classes)}
    entries = [e for part in parts for e in read_lines(folder / "labels" / f"{part}1.txt")]
    return ImageFileDataset(
        [folder / "images" / e for e in entries], [index[e.split("/")[0]] for e in entries], classes
    )


@register_dataset(
    "fgvc_aircraft",
    num_classes=100,
    image_size=224,
    splits=("trainval", "train", "val", "test"),
    how_to_get=AIRCRAFT_HOW,
)
def fgvc_aircraft(root: Path, split: str) -> ImageFileDataset:
    """FGVC-Aircraft at the variant level (100 classes, the usual transfer target): data/variants.txt
    names the classes in order; data/images_variant_<split>.txt lines are "<image id> <variant>", where
    the variant name may itself contain spaces. Images keep their 20 px copyright banner, as in
    torchvision."""
    folder = locate("fgvc_aircraft", root, ["fgvc-aircraft-2013b", ""],
                    ["data/variants.txt", f"data/images_variant_{split}.txt", "data/images"], AIRCRAFT_HOW,
                    _torchvision_download("FGVCAircraft"))
    classes = read_lines(folder / "data" / "variants.txt")
    index = {name: i for i, name in enumerate(classes)}
    paths, labels = [], []
    for line in read_lines(folder / "data" / f"images_variant_{split}.txt"):
        image_id, variant = line.split(" ", 1)
        paths.append(folder / "data" / "images" / f"{image_id}.jpg")
        labels.append(index[variant])
    return ImageFileDataset(paths, labels, classes)


@register_dataset("stanford_cars", num_classes=196, image_size=224, how_to_get=CARS_HOW)
def stanford_cars(root: Path, split: str) -> ImageFileDataset:
    """Stanford Cars, 196 models: the devkit's annotation structs carry each image's file name and class
    (1..196); devkit/cars_meta.mat names the classes. The test labels ship separately, in
    cars_test_annos_withlabels.mat."""
    annotations = "devkit/cars_train_annos.mat" if split == "train" else "cars_test_annos_withlabels.mat"
    images = "cars_train" if split == "train" else "cars_test"
    folder = locate("stanford_cars", root, ["stanford_cars", ""], ["devkit/cars_meta.mat", annotations, images],
                    CARS_HOW)
    records = np.atleast_1d(_loadmat(folder / annotations)["annotations"])
    classes = [str(c) for c in np.atleast_1d(_loadmat(folder / "devkit" / "cars_meta.mat")["class_names"])]
    return ImageFileDataset(
        [folder / images / str(r["fname"]) for r in records], [int(r["class"]) - 1 for r in records], classes
    )
