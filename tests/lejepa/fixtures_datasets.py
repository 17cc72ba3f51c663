"""Tiny copies of every registered dataset in its real on-disk format, for tests/test_datasets.py.

Each writer builds a handful of images under `base` in the layout of the official release (the same
layout torchvision's loaders read) and returns a Fixture: the root to load from, the labels each split
must yield in order, and how to recognise an image's label from its pixels. Every image is filled with
`code(label)`, so a test can check that an image and its label travel together.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from lejepa.data.imagefolder_sets import IMAGENETTE_WNIDS, imagenet100_classes

MARKER = (255, 0, 255)  # top-right pixel of lossless images: catches transposed or flipped readers
BLUE = 77


def code(label: int) -> int:
    """The grey level that encodes a label (distinct for the few labels a fixture uses)."""
    return (37 * label + 20) % 256


@dataclass
class Fixture:
    root: Path
    targets: dict[str, list[int]]  # split -> labels in the loader's order
    size: tuple[int, int]  # (width, height) of every image
    lossless: bool  # array formats: exact pixels (code, 255 - code, BLUE) and the MARKER; else grey +- 8
    notes: dict = field(default_factory=dict)


# --- pixels ---------------------------------------------------------------------------------------------


def lossless_array(label: int, size: tuple[int, int]) -> np.ndarray:
    """H x W x 3 uint8: (code, 255 - code, BLUE) everywhere, MARKER at row 0, last column."""
    width, height = size
    v = code(label)
    array = np.empty((height, width, 3), dtype=np.uint8)
    array[...] = (v, 255 - v, BLUE)
    array[0, width - 1] = MARKER
    return array


def save_jpeg(path: Path, label: int, size: tuple[int, int], mode: str = "RGB") -> None:
    """A flat grey JPEG, stored in `mode` (RGB, L or CMYK: real releases contain all three)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    v = code(label)
    Image.new("RGB", size, (v, v, v)).convert(mode).save(path, format="JPEG", quality=95)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# --- array formats --------------------------------------------------------------------------------------


def write_fashion_mnist(base: Path) -> Fixture:
    """IDX files as the Debian package ships them: gzipped, big-endian header, 28 x 28 grey."""
    root = base / "fashion-mnist"
    root.mkdir(parents=True)
    targets = {"train": [3, 0, 7, 3, 9], "test": [1, 8]}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        labels = targets[split]
        images = np.stack([np.full((28, 28), code(y), dtype=np.uint8) for y in labels])
        images[:, 0, 27] = 255  # marker at row 0, last column
        with gzip.open(root / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">HBB3I", 0, 0x08, 3, len(labels), 28, 28) + images.tobytes())
        with gzip.open(root / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">HBBI", 0, 0x08, 1, len(labels)) + bytes(labels))
    return Fixture(root, targets, (28, 28), lossless=True, notes={"grey": True})


def _cifar_rows(labels: list[int]) -> np.ndarray:
    """N x 3072: each image's red plane, then green, then blue, each row-major."""
    return np.stack([lossless_array(y, (32, 32)).transpose(2, 0, 1).reshape(-1) for y in labels])


def _pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(base: Path) -> Fixture:
    """cifar-10-batches-py/: data_batch_1..5 and test_batch dicts (batch_label, labels, data,
    filenames) plus batches.meta (label_names, num_cases_per_batch, num_vis)."""
    folder = base / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {"data_batch_1": [6, 9], "data_batch_2": [9], "data_batch_3": [4, 1], "data_batch_4": [1],
               "data_batch_5": [2, 7], "test_batch": [3, 8, 0]}
    for name, labels in batches.items():
        _pickle(folder / name, {
            "batch_label": f"{name} of 5", "labels": labels, "data": _cifar_rows(labels),
            "filenames": [f"img_{i}.png" for i in range(len(labels))],
        })
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _pickle(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": 10000, "num_vis": 3072})
    train = [y for n in sorted(batches) if n.startswith("data_batch") for y in batches[n]]
    return Fixture(base, {"train": train, "test": batches["test_batch"]}, (32, 32), lossless=True)


def write_cifar100(base: Path) -> Fixture:
    """cifar-100-python/: train and test dicts (filenames, batch_label, fine_labels, coarse_labels,
    data) plus meta (fine_label_names, coarse_label_names)."""
    folder = base / "cifar-100-python"
    folder.mkdir(parents=True)
    targets = {"train": [99, 0, 42, 7], "test": [13, 99]}
    for split, labels in targets.items():
        _pickle(folder / split, {
            "filenames": [f"img_{i}.png" for i in range(len(labels))], "batch_label": f"{split} batch 1 of 1",
            "fine_labels": labels, "coarse_labels": [y // 5 for y in labels], "data": _cifar_rows(labels),
        })
    _pickle(folder / "meta", {"fine_label_names": [f"fine_{i}" for i in range(100)],
                              "coarse_label_names": [f"coarse_{i}" for i in range(20)]})
    return Fixture(base, targets, (32, 32), lossless=True)


def _stl_bytes(labels: list[int]) -> bytes:
    # Each channel is stored column by column: (channel, column, row) order.
    return b"".join(lossless_array(y, (96, 96)).transpose(2, 1, 0).tobytes() for y in labels)


def write_stl10(base: Path) -> Fixture:
    """stl10_binary/: {train,test,unlabeled}_X.bin raw images, {train,test}_y.bin labels 1..10,
    class_names.txt and fold_indices.txt."""
    folder = base / "stl10_binary"
    folder.mkdir(parents=True)
    train, test, unlabeled = [4, 0, 9], [2, 2, 5], [-1, -1]
    for part, labels in (("train", train), ("test", test)):
        (folder / f"{part}_X.bin").write_bytes(_stl_bytes(labels))
        (folder / f"{part}_y.bin").write_bytes(bytes(y + 1 for y in labels))
    (folder / "unlabeled_X.bin").write_bytes(_stl_bytes(unlabeled))
    names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    (folder / "fold_indices.txt").write_text("0 1\n" * 10)
    targets = {"train": train, "unlabeled": unlabeled, "train+unlabeled": train + unlabeled, "test": test}
    return Fixture(base, targets, (96, 96), lossless=True)


def write_galaxy10(base: Path) -> Fixture:
    """Galaxy10_DECals.h5 with the release's datasets: images (N, 256, 256, 3) uint8, ans (N,) uint8,
    ra, dec, redshift, pxscale. Ten images in each of classes 0, 4 and 9: the paper's 11,008 / 17,736 share of
    30 is 19 train images (7 of class 0, the tie broken to the lower class, 6 of 4 and of 9)."""
    import h5py

    from lejepa.data.galaxy10 import SPLIT_SEED, proportional_split, train_images_for

    root = base / "galaxy10"
    root.mkdir(parents=True)
    labels = np.array([0, 4, 9] * 10, dtype=np.uint8)
    with h5py.File(root / "Galaxy10_DECals.h5", "w") as f:
        f.create_dataset("images", data=np.stack([lossless_array(int(y), (256, 256)) for y in labels]))
        f.create_dataset("ans", data=labels)
        for key in ("ra", "dec", "redshift", "pxscale"):
            f.create_dataset(key, data=np.linspace(0.1, 1.0, len(labels)))
    train, test = proportional_split(labels.astype(np.int64), train_images_for(len(labels)), SPLIT_SEED)
    targets = {"train": labels[train].tolist(), "test": labels[test].tolist()}
    return Fixture(root, targets, (256, 256), lossless=True, notes={"train_idx": train, "test_idx": test})


# --- image files with label lists -----------------------------------------------------------------------


def write_flowers102(base: Path) -> Fixture:
    """flowers-102/: jpg/image_NNNNN.jpg, imagelabels.mat ('labels', 1 x N, classes 1..102) and
    setid.mat ('trnid', 'valid', 'tstid': 1 x n image numbers)."""
    from scipy.io import savemat

    folder = base / "flowers-102"
    labels = [1, 102, 50, 1, 102, 50, 7, 7, 1]  # 1-based, image k has labels[k - 1]
    for number, label in enumerate(labels, 1):
        save_jpeg(folder / "jpg" / f"image_{number:05d}.jpg", label - 1, (14, 10))
    savemat(folder / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    ids = {"trnid": [2, 1], "valid": [4, 9, 3], "tstid": [5, 6, 7, 8]}
    savemat(folder / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in ids.items()})

    def split_labels(keys: list[str]) -> list[int]:
        return [labels[i - 1] - 1 for key in keys for i in ids[key]]

    targets = {"trainval": split_labels(["trnid", "valid"]), "train": split_labels(["trnid"]),
               "val": split_labels(["valid"]), "test": split_labels(["tstid"])}
    return Fixture(base, targets, (14, 10), lossless=False)


def write_food101(base: Path) -> Fixture:
    """food-101/: images/<class>/<id>.jpg, meta/{train,test}.json ({class: ["class/id", ...]}) and
    meta/classes.txt. The JSON is deliberately not in sorted class order."""
    folder = base / "food-101"
    splits = {
        "train": {"waffles": ["waffles/101", "waffles/102"], "apple_pie": ["apple_pie/7"], "ramen": ["ramen/3"]},
        "test": {"ramen": ["ramen/55"], "apple_pie": ["apple_pie/9", "apple_pie/10"], "waffles": []},
    }
    classes = sorted(splits["train"])
    targets = {}
    for split, by_class in splits.items():
        targets[split] = []
        for name, stems in by_class.items():
            for stem in stems:
                save_jpeg(folder / "images" / f"{stem}.jpg", classes.index(name), (12, 16))
                targets[split].append(classes.index(name))
        (folder / "meta").mkdir(parents=True, exist_ok=True)
        (folder / "meta" / f"{split}.json").write_text(json.dumps(by_class))
    (folder / "meta" / "classes.txt").write_text("\n".join(classes) + "\n")
    return Fixture(base, targets, (12, 16), lossless=False)


def write_oxford_pets(base: Path) -> Fixture:
    """oxford-iiit-pet/: images/<Breed>_<n>.jpg and annotations/{trainval,test}.txt with lines
    "<image id> <class 1..37> <species 1 cat / 2 dog> <breed id within species>"."""
    folder = base / "oxford-iiit-pet"
    rows = {
        "trainval": [("Abyssinian_1", 1, 1, 1), ("american_bulldog_12", 2, 2, 1), ("yorkshire_terrier_3", 37, 2, 25),
                     ("Abyssinian_2", 1, 1, 1)],
        "test": [("american_bulldog_40", 2, 2, 1), ("yorkshire_terrier_9", 37, 2, 25)],
    }
    (folder / "annotations" / "trimaps").mkdir(parents=True)
    for split, lines in rows.items():
        text = "".join(f"{image_id} {c} {s} {b}\n" for image_id, c, s, b in lines)
        (folder / "annotations" / f"{split}.txt").write_text(text)
        for image_id, c, _, _ in lines:
            save_jpeg(folder / "images" / f"{image_id}.jpg", c - 1, (10, 12))
    targets = {split: [c - 1 for _, c, _, _ in lines] for split, lines in rows.items()}
    return Fixture(base, targets, (10, 12), lossless=False)


def write_dtd(base: Path) -> Fixture:
    """dtd/dtd/: images/<class>/<class>_NNNN.jpg and labels/{train,val,test}1.txt of "class/file.jpg"
    (plus a second partition, which must be ignored). Some JPEGs are greyscale or CMYK, as in the release."""
    folder = base / "dtd" / "dtd"
    classes = ["banded", "cracked", "zigzagged"]
    splits = {
        "train": ["banded/banded_0002.jpg", "cracked/cracked_0004.jpg", "zigzagged/zigzagged_0001.jpg"],
        "val": ["zigzagged/zigzagged_0009.jpg", "banded/banded_0010.jpg", "cracked/cracked_0011.jpg"],
        "test": ["cracked/cracked_0020.jpg", "banded/banded_0021.jpg", "zigzagged/zigzagged_0022.jpg"],
    }
    modes = ["RGB", "L", "CMYK"]
    (folder / "labels").mkdir(parents=True)
    for split, entries in splits.items():
        (folder / "labels" / f"{split}1.txt").write_text("\n".join(entries) + "\n")
        (folder / "labels" / f"{split}2.txt").write_text(entries[0] + "\n")
        for k, entry in enumerate(entries):
            save_jpeg(folder / "images" / entry, classes.index(entry.split("/")[0]), (16, 12), modes[k % 3])
    (folder / "imdb").mkdir()
    targets = {s: [classes.index(e.split("/")[0]) for e in entries] for s, entries in splits.items()}
    targets = {"trainval": targets["train"] + targets["val"], **targets}
    return Fixture(base, targets, (16, 12), lossless=False)


def write_fgvc_aircraft(base: Path) -> Fixture:
    """fgvc-aircraft-2013b/data/: images/<id>.jpg, variants.txt (one class a line) and
    images_variant_{train,val,trainval,test}.txt of "<id> <variant>" (variants may contain spaces)."""
    data = base / "fgvc-aircraft-2013b" / "data"
    variants = ["707-320", "Cessna 172", "F-16A/B", "Tu-134"]
    splits = {"train": [("1025794", "Cessna 172"), ("0056978", "707-320")],
              "val": [("1340192", "F-16A/B"), ("0062765", "Cessna 172")],
              "test": [("2233746", "Tu-134"), ("0101024", "707-320"), ("1887362", "F-16A/B")]}
    splits["trainval"] = splits["train"] + splits["val"]
    data.mkdir(parents=True)
    (data / "variants.txt").write_text("\n".join(variants) + "\n")
    (data / "families.txt").write_text("Boeing 707\nCessna 172\nF-16\nTu-134\n")
    for split, rows in splits.items():
        (data / f"images_variant_{split}.txt").write_text("".join(f"{i} {v}\n" for i, v in rows))
        for image_id, variant in rows:
            save_jpeg(data / "images" / f"{image_id}.jpg", variants.index(variant), (20, 14))
    targets = {split: [variants.index(v) for _, v in rows] for split, rows in splits.items()}
    return Fixture(base, targets, (20, 14), lossless=False)


def _cars_annotations(rows: list[tuple[str, int]]) -> np.ndarray:
    """The devkit's 1 x N struct array: bbox_x1, bbox_y1, bbox_x2, bbox_y2, class (1..196), fname."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    records = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for k, (fname, label) in enumerate(rows):
        box = [np.array([[v]], dtype=np.uint16) for v in (1, 2, 9, 8)]
        records[0, k] = (*box, np.array([[label]], dtype=np.uint8), np.array([fname]))
    return records


def write_stanford_cars(base: Path) -> Fixture:
    """stanford_cars/: cars_train/ and cars_test/ JPEGs, devkit/cars_meta.mat (class_names),
    devkit/cars_train_annos.mat and cars_test_annos_withlabels.mat (annotations struct arrays)."""
    from scipy.io import savemat

    folder = base / "stanford_cars"
    (folder / "devkit").mkdir(parents=True)
    names = np.empty((1, 196), dtype=object)
    names[0, :] = [f"Make Model {k} 2012" for k in range(1, 197)]
    savemat(folder / "devkit" / "cars_meta.mat", {"class_names": names})
    rows = {"train": [("00001.jpg", 14), ("00002.jpg", 3), ("00003.jpg", 196)],
            "test": [("00001.jpg", 196), ("00002.jpg", 1)]}
    savemat(folder / "devkit" / "cars_train_annos.mat", {"annotations": _cars_annotations(rows["train"])})
    savemat(folder / "cars_test_annos_withlabels.mat", {"annotations": _cars_annotations(rows["test"])})
    for split, images in (("train", "cars_train"), ("test", "cars_test")):
        for fname, label in rows[split]:
            save_jpeg(folder / images / fname, label - 1, (18, 12))
    targets = {split: [label - 1 for _, label in r] for split, r in rows.items()}
    return Fixture(base, targets, (18, 12), lossless=False)


# --- class-folder trees ---------------------------------------------------------------------------------


def _class_tree(split_dir: Path, all_classes: list[str], images: dict[str, int], size: tuple[int, int],
                label_of: Callable[[str], int]) -> list[int]:
    """One folder per class (most empty), `images[wnid]` JPEGs in the named ones; returns the labels in
    the order a sorted walk yields them."""
    for wnid in all_classes:
        (split_dir / wnid).mkdir(parents=True, exist_ok=True)
    targets = []
    for wnid in sorted(images):
        for k in range(images[wnid]):
            save_jpeg(split_dir / wnid / f"{wnid}_{k}.JPEG", label_of(wnid), size)
            targets.append(label_of(wnid))
    return targets


def fake_imagenet_wnids(include: list[str] = ()) -> list[str]:
    """1,000 WordNet-style ids (n + 8 digits), containing `include`."""
    wnids = set(include)
    k = 0
    while len(wnids) < 1000:
        wnids.add(f"n0{1000000 + 7919 * k:07d}")
        k += 1
    return sorted(wnids)


def write_imagenet1k(base: Path) -> Fixture:
    """train/<wnid>/*.JPEG and val/<wnid>/*.JPEG with all 1,000 class folders, images in a few."""
    root = base / "imagenet"
    wnids = fake_imagenet_wnids()
    chosen = {"train": {wnids[0]: 2, wnids[517]: 1, wnids[999]: 2}, "val": {wnids[517]: 1, wnids[3]: 1}}
    targets = {split: _class_tree(root / split, wnids, images, (12, 10), wnids.index)
               for split, images in chosen.items()}
    return Fixture(root, targets, (12, 10), lossless=False)


def write_imagenet100(base: Path) -> Fixture:
    """An ImageNet-1k tree (1,000 folders including the 100 of ImageNet-100); images in three
    ImageNet-100 classes and in one other class, which the loader must leave out."""
    root = base / "imagenet"
    subset = imagenet100_classes()
    wnids = fake_imagenet_wnids(subset)
    outsider = next(w for w in wnids if w not in subset)
    chosen = {"train": {subset[0]: 1, subset[57]: 2, subset[99]: 1, outsider: 2},
              "val": {subset[57]: 1, outsider: 1, subset[12]: 1}}

    def label_of(wnid: str) -> int:
        return subset.index(wnid) if wnid in subset else 0

    targets = {}
    for split, images in chosen.items():
        _class_tree(root / split, wnids, images, (12, 10), label_of)
        kept = sorted(w for w in images if w in subset)
        targets[split] = [subset.index(w) for w in kept for _ in range(images[w])]
    return Fixture(root, targets, (12, 10), lossless=False, notes={"outsider": outsider})


def write_imagenette(base: Path) -> Fixture:
    """imagenette2/{train,val}/<wnid>/*.JPEG for the ten Imagenette classes, plus noisy_imagenette.csv."""
    root = base / "imagenette2"
    wnids = sorted(IMAGENETTE_WNIDS)
    counts = {"train": {w: 1 + (k % 2) for k, w in enumerate(wnids)}, "val": {w: 1 for w in wnids}}
    targets = {split: _class_tree(root / split, wnids, images, (14, 12), wnids.index)
               for split, images in counts.items()}
    (root / "noisy_imagenette.csv").write_text("path,noisy_labels_0,is_valid\n")
    return Fixture(base, targets, (14, 12), lossless=False)


# --- Hugging Face -----------------------------------------------------------------------------------------

HF_FEATURES = {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": [f"c{i}" for i in range(1000)]}}


def hf_table(labels: list[int], with_metadata: bool):
    """A parquet-ready table like the Hub release: image struct {bytes (PNG), path}, int64 label; with the
    'huggingface' schema metadata that tells `datasets` the column is an Image, or without it."""
    import pyarrow as pa

    images = [{"bytes": png_bytes(lossless_array(max(y, 0), (20, 16))), "path": f"img_{k}.png"}
              for k, y in enumerate(labels)]
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({"image": pa.array(images, type=image_type), "label": pa.array(labels, type=pa.int64())})
    if with_metadata:
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": HF_FEATURES}})})
    return table


HF_SHARDS = {"train-00000-of-00002": [5, 999, 0], "train-00001-of-00002": [5, 12], "validation-00000-of-00001": [3, 7],
             "test-00000-of-00001": [-1, -1]}


def write_imagenet1k_hf(base: Path, with_metadata: bool = True) -> Fixture:
    """data/<split>-NNNNN-of-NNNNN.parquet shards, as `huggingface-cli download ILSVRC/imagenet-1k` leaves."""
    import pyarrow.parquet as pq

    root = base / "imagenet-1k-hf"
    (root / "data").mkdir(parents=True)
    for shard, labels in HF_SHARDS.items():
        pq.write_table(hf_table(labels, with_metadata), root / "data" / f"{shard}.parquet")
    targets = {"train": HF_SHARDS["train-00000-of-00002"] + HF_SHARDS["train-00001-of-00002"],
               "validation": HF_SHARDS["validation-00000-of-00001"]}
    return Fixture(root, targets, (20, 16), lossless=True)


def write_hub_cache(base: Path, repo_id: str = "ILSVRC/imagenet-1k") -> Path:
    """The shards of write_imagenet1k_hf as `huggingface-cli download REPO --repo-type dataset` leaves them
    in the Hub cache: refs/main names a commit, snapshots/COMMIT/data/*.parquet link into blobs/."""
    import hashlib

    import pyarrow.parquet as pq

    repo = base / f"datasets--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    data = repo / "snapshots" / commit / "data"
    (repo / "blobs").mkdir(parents=True)
    data.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)  # no trailing newline, as huggingface_hub writes it
    for shard, labels in HF_SHARDS.items():
        buffer = io.BytesIO()
        pq.write_table(hf_table(labels, with_metadata=True), buffer)
        blob = repo / "blobs" / hashlib.sha256(buffer.getvalue()).hexdigest()
        blob.write_bytes(buffer.getvalue())
        (data / f"{shard}.parquet").symlink_to(Path("../../..") / "blobs" / blob.name)
    return base


# Every registered dataset but 'digits' (bundled with scikit-learn, so it has no folder to fake).
FIXTURES: dict[str, Callable[[Path], Fixture]] = {
    "fashion_mnist": write_fashion_mnist,
    "cifar10": write_cifar10,
    "cifar100": write_cifar100,
    "stl10": write_stl10,
    "galaxy10_decals": write_galaxy10,
    "flowers102": write_flowers102,
    "food101": write_food101,
    "oxford_pets": write_oxford_pets,
    "dtd": write_dtd,
    "fgvc_aircraft": write_fgvc_aircraft,
    "stanford_cars": write_stanford_cars,
    "imagenet1k": write_imagenet1k,
    "imagenet100": write_imagenet100,
    "imagenette": write_imagenette,
    "imagenet1k_hf": write_imagenet1k_hf,
}
