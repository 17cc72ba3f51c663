"""Dataset registry: every loader reads a tiny fixture in its dataset's real on-disk format
(tests/fixtures_datasets.py), agrees with torchvision's reader where one exists, and fails helpfully."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch
from fixtures_datasets import (
    BLUE,
    FIXTURES,
    MARKER,
    code,
    fake_imagenet_wnids,
    hf_table,
    write_cifar10,
    write_flowers102,
    write_galaxy10,
    write_hub_cache,
    write_imagenet1k,
    write_imagenet1k_hf,
    write_imagenet100,
    write_stl10,
)
from PIL import Image

from lejepa.data import DATASETS, DatasetNotFound, get_dataset
from lejepa.data.common import DOWNLOAD_ENV

# name: (num_classes, image_size, splits) as the registry must report them.
EXPECTED = {
    "fashion_mnist": (10, 28, ("train", "test")),
    "digits": (10, 16, ("train", "test")),
    "cifar10": (10, 32, ("train", "test")),
    "cifar100": (100, 32, ("train", "test")),
    "stl10": (10, 96, ("train", "unlabeled", "train+unlabeled", "test")),
    "galaxy10_decals": (10, 128, ("train", "test")),
    "flowers102": (102, 224, ("train", "val", "trainval", "test")),  # train first: paper Table 5
    "food101": (101, 224, ("train", "test")),
    "oxford_pets": (37, 224, ("trainval", "test")),
    "dtd": (47, 224, ("trainval", "train", "val", "test")),
    "fgvc_aircraft": (100, 224, ("trainval", "train", "val", "test")),
    "stanford_cars": (196, 224, ("train", "test")),
    "imagenet1k": (1000, 224, ("train", "val")),
    "imagenet1k_hf": (1000, 224, ("train", "validation")),
    "imagenet100": (100, 224, ("train", "val")),
    "imagenette": (10, 128, ("train", "val")),
}


@pytest.fixture(autouse=True)
def _offline_hugging_face(tmp_path, monkeypatch):
    # Keep `datasets`' Arrow cache inside the test folder and its hands off the network.
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub_cache"))  # empty unless a test fills it
    monkeypatch.delenv(DOWNLOAD_ENV, raising=False)


def as_pixels(image) -> np.ndarray:
    """H x W x 3 uint8 from a loader's image: an RGB PIL image or a uint8 3 x H x W tensor."""
    if isinstance(image, torch.Tensor):
        assert image.dtype == torch.uint8 and image.ndim == 3 and image.shape[0] == 3
        return image.permute(1, 2, 0).numpy()
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    return np.asarray(image)


def check_image(image, label: int, fixture) -> None:
    pixels = as_pixels(image)
    width, height = fixture.size
    assert pixels.shape == (height, width, 3)
    v = code(label)
    centre = pixels[height // 2, width // 2].astype(int)
    if fixture.notes.get("grey"):
        assert centre.tolist() == [v, v, v]
        assert pixels[0, width - 1].tolist() == [255, 255, 255]
    elif fixture.lossless:
        assert centre.tolist() == [v, 255 - v, BLUE]
        assert pixels[0, width - 1].tolist() == list(MARKER)
    else:
        assert np.abs(centre - v).max() <= 8, (centre, v)


def test_registry_lists_every_dataset_with_its_numbers():
    assert len(DATASETS) >= 15
    assert set(DATASETS) == set(EXPECTED)
    assert set(FIXTURES) == set(DATASETS) - {"digits"}
    for name, (num_classes, image_size, splits) in EXPECTED.items():
        info = get_dataset(name)
        assert (info.num_classes, info.image_size, info.splits) == (num_classes, image_size, splits), name
        assert len(info.mean) == 3 and len(info.std) == 3
        assert all(0 < m < 1 for m in info.mean) and all(0 < s < 1 for s in info.std)
        assert info.how_to_get and info.default_root


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_loader_reads_its_real_format(name, tmp_path):
    fixture = FIXTURES[name](tmp_path)
    info = get_dataset(name)
    assert set(fixture.targets) == set(info.splits)
    for split, expected in fixture.targets.items():
        dataset = info.load(split, root=str(fixture.root))
        assert len(dataset) == len(expected), split
        assert dataset.targets == expected, split
        assert all(isinstance(t, int) for t in dataset.targets)
        assert all(-1 <= t < info.num_classes for t in dataset.targets)  # -1: STL-10's unlabeled images
        for index, label in enumerate(expected):
            image, got = dataset[index]
            assert got == label
            check_image(image, label, fixture)


def test_digits_is_bundled_with_scikit_learn():
    info = get_dataset("digits")
    train, test = info.load("train"), info.load("test")
    assert (len(train), len(test)) == (1437, 360)  # a stratified 80/20 split of 1,797
    assert sorted(set(train.targets)) == list(range(10)) == sorted(set(test.targets))
    image, label = train[0]
    assert as_pixels(image).shape == (8, 8, 3) and label == train.targets[0]


@pytest.mark.parametrize("name", sorted(set(DATASETS) - {"digits"}))
def test_missing_dataset_says_where_it_looked_and_how_to_get_it(name, tmp_path):
    info = get_dataset(name)
    root = tmp_path / "nothing-here"
    with pytest.raises(DatasetNotFound) as raised:
        info.load(info.train_split, root=str(root))
    message = str(raised.value)
    assert str(root) in message
    assert info.how_to_get in message


def test_unknown_dataset_gets_a_suggestion():
    with pytest.raises(KeyError, match="did you mean cifar10"):
        get_dataset("cifar-10")
    with pytest.raises(KeyError, match="imagenette"):
        get_dataset("imagenete")
    with pytest.raises(ValueError, match="splits"):
        get_dataset("cifar10").load("validation", root="/nonexistent")


def test_datasets_are_found_from_the_unpacked_folder_too(tmp_path):
    fixture = write_cifar10(tmp_path)
    inner = get_dataset("cifar10").load("test", root=str(fixture.root / "cifar-10-batches-py"))
    assert inner.targets == fixture.targets["test"]


# --- agreement with torchvision's readers of the same files ------------------------------------------------


def _torchvision_reader(name: str, monkeypatch):
    """torchvision's class for `name` as (root, split) -> dataset, with its md5 checks disabled: the
    fixtures are in the release's format but are not its bytes."""
    from torchvision import datasets as tv
    from torchvision.datasets import cifar, flowers102, stl10

    for module in (cifar, flowers102, stl10):
        monkeypatch.setattr(module, "check_integrity", lambda *args, **kwargs: True)
    return {
        "cifar10": lambda root, split: tv.CIFAR10(root, train=split == "train"),
        "cifar100": lambda root, split: tv.CIFAR100(root, train=split == "train"),
        "stl10": lambda root, split: tv.STL10(root, split=split),
        "flowers102": lambda root, split: tv.Flowers102(root, split=split),
        "food101": lambda root, split: tv.Food101(root, split=split),
        "oxford_pets": lambda root, split: tv.OxfordIIITPet(root, split=split),
        "dtd": lambda root, split: tv.DTD(root, split=split),
        "fgvc_aircraft": lambda root, split: tv.FGVCAircraft(root, split=split),
        "stanford_cars": lambda root, split: tv.StanfordCars(root, split=split),
        "imagenette": lambda root, split: tv.Imagenette(root, split=split),
        "imagenet1k": lambda root, split: tv.ImageFolder(f"{root}/{split}", allow_empty=True),
    }[name]


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "stl10", "flowers102", "food101", "oxford_pets", "dtd",
                                  "fgvc_aircraft", "stanford_cars", "imagenette", "imagenet1k"])
def test_loader_agrees_with_torchvision(name, tmp_path, monkeypatch):
    fixture = FIXTURES[name](tmp_path)
    reference = _torchvision_reader(name, monkeypatch)
    for split in fixture.targets:
        if split == "trainval" and name in ("flowers102", "dtd"):
            continue  # our union of train and val; torchvision has no such split for these
        ours, theirs = get_dataset(name).load(split, root=str(fixture.root)), reference(str(fixture.root), split)
        assert len(ours) == len(theirs)
        for index in range(len(ours)):
            (image, label), (their_image, their_label) = ours[index], theirs[index]
            assert label == their_label
            np.testing.assert_array_equal(as_pixels(image), np.asarray(their_image.convert("RGB")))


# --- dataset-specific behaviour -----------------------------------------------------------------------------


def test_download_happens_only_when_opted_in(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    class FakeCIFAR10:  # stands in for torchvision's downloader: unpacks the fixture into root
        def __init__(self, root, download=False):
            calls.append((root, download))
            write_cifar10(tmp_path / "data")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    info = get_dataset("cifar10")
    with pytest.raises(DatasetNotFound, match=DOWNLOAD_ENV):
        info.load("train", root=str(tmp_path / "data"))
    assert calls == []
    monkeypatch.setenv(DOWNLOAD_ENV, "1")
    assert len(info.load("train", root=str(tmp_path / "data"))) == 8
    assert calls == [(str(tmp_path / "data"), True)]


def test_lazily_opened_files_pickle_without_their_data(tmp_path):
    # Data-loader workers started by spawn receive the dataset pickled: it must carry paths, not pixels.
    for dataset in (get_dataset("stl10").load("train+unlabeled", root=str(write_stl10(tmp_path).root)),
                    get_dataset("galaxy10_decals").load("train", root=str(write_galaxy10(tmp_path).root))):
        first = as_pixels(dataset[0][0])  # opens the memory map / HDF5 file in this process
        blob = pickle.dumps(dataset)
        assert len(blob) < 20_000
        np.testing.assert_array_equal(as_pixels(pickle.loads(blob)[0][0]), first)


def test_galaxy10_split_is_stratified_disjoint_and_fixed(tmp_path):
    fixture = write_galaxy10(tmp_path)
    train, test = fixture.notes["train_idx"], fixture.notes["test_idx"]
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 30
    assert sorted(fixture.targets["train"]) == [0] * 7 + [4] * 6 + [9] * 6  # 19 = round(30 * 11008 / 17736)
    info = get_dataset("galaxy10_decals")
    assert info.load("train", root=str(fixture.root)).targets == fixture.targets["train"]
    again = info.load("test", root=str(fixture.root))
    assert again.targets == fixture.targets["test"]
    assert again.images.indices.tolist() == test.tolist()
    by_file = info.load("test", root=str(fixture.root / "Galaxy10_DECals.h5"))  # root may name the file
    assert by_file.targets == fixture.targets["test"]


def test_imagenet100_keeps_only_its_classes_and_needs_all_of_them(tmp_path):
    fixture = write_imagenet100(tmp_path)
    info = get_dataset("imagenet100")
    train = info.load("train", root=str(fixture.root))
    assert len(train.classes) == 100 and train.classes == sorted(train.classes)
    assert all(fixture.notes["outsider"] not in path for path in train.paths)
    shutil.rmtree(fixture.root / "val" / train.classes[42])
    with pytest.raises(DatasetNotFound, match=train.classes[42]):
        info.load("val", root=str(fixture.root))


def test_imagenet100_class_list_is_cmc_subset():
    from lejepa.data.imagefolder_sets import imagenet100_classes

    wnids = imagenet100_classes()
    assert len(wnids) == len(set(wnids)) == 100
    assert all(w.startswith("n") and len(w) == 9 and w[1:].isdigit() for w in wnids)
    assert {"n02869837", "n01749939", "n02090622"} <= set(wnids)  # CMC's first, second and last


def test_imagenet1k_labels_come_from_train_and_count_is_checked(tmp_path):
    fixture = write_imagenet1k(tmp_path)
    info = get_dataset("imagenet1k")
    # A val/ folder lacking a class would shift labels if val chose its own classes: it does not.
    empty_class = min(p.name for p in (fixture.root / "val").iterdir())
    (fixture.root / "val" / empty_class).rmdir()
    with pytest.raises(DatasetNotFound, match=empty_class):
        info.load("val", root=str(fixture.root))
    shutil.rmtree(fixture.root / "train" / fake_imagenet_wnids()[5])
    with pytest.raises(ValueError, match="999 class folders"):
        info.load("train", root=str(fixture.root))


def test_imagenet1k_hf_reads_plain_shards_and_save_to_disk(tmp_path):
    import datasets
    import pyarrow.parquet as pq

    expected = write_imagenet1k_hf(tmp_path / "ref")
    info = get_dataset("imagenet1k_hf")
    reference = info.load("train", root=str(expected.root))
    # Shards without Hugging Face's schema metadata, one folder per split: images are a plain struct.
    plain = tmp_path / "plain"
    (plain / "train").mkdir(parents=True)
    pq.write_table(hf_table(expected.targets["train"], with_metadata=False), plain / "train" / "part-0.parquet")
    # save_to_disk output of the same data.
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": reference.table, "validation": reference.table}).save_to_disk(str(saved))
    for root in (plain, saved):
        dataset = info.load("train", root=str(root))
        assert dataset.targets == expected.targets["train"]
        for index, label in enumerate(expected.targets["train"]):
            np.testing.assert_array_equal(as_pixels(dataset[index][0]), as_pixels(reference[index][0]))
            assert dataset[index][1] == label


def test_imagenet1k_hf_reads_a_hub_id_from_the_local_hub_cache(tmp_path, monkeypatch):
    expected = write_imagenet1k_hf(tmp_path / "ref").targets
    write_hub_cache(tmp_path / "hub_cache")  # where the autouse fixture points $HF_HUB_CACHE
    monkeypatch.chdir(tmp_path)  # "ILSVRC/imagenet-1k" must not name a folder here
    info = get_dataset("imagenet1k_hf")
    by_id = info.load("validation", root="ILSVRC/imagenet-1k")
    assert by_id.targets == expected["validation"] == [3, 7]
    for index, label in enumerate(by_id.targets):
        assert as_pixels(by_id[index][0])[8, 10].tolist() == [code(label), 255 - code(label), BLUE]
    # No folder at the default root: the release's own id is looked up in the cache.
    monkeypatch.setenv("LEJEPA_DATA_ROOT", str(tmp_path / "empty"))
    assert info.load("train").targets == expected["train"]
    with pytest.raises(DatasetNotFound, match="Hub-cache snapshot of someone/else in .*datasets--someone--else"):
        info.load("train", root="someone/else")


# Galaxy10 DECaLS images per class, as the release lists them (github.com/henrysky/Galaxy10, 17,736 in all).
GALAXY10_CLASS_COUNTS = [1081, 1853, 2645, 2027, 334, 2043, 1829, 2628, 1423, 1873]


def test_galaxy10_split_of_the_full_release_has_the_papers_11008_training_images():
    from lejepa.data.galaxy10 import SPLIT_SEED, proportional_split, train_images_for

    labels = np.repeat(np.arange(10), GALAXY10_CLASS_COUNTS)
    assert len(labels) == 17_736 and train_images_for(len(labels)) == 11_008
    train, test = proportional_split(labels, 11_008, SPLIT_SEED)
    assert len(train) == 11_008 and len(test) == 6_728 and not set(train) & set(test)
    per_class = np.bincount(labels[train], minlength=10)
    quotas = np.array(GALAXY10_CLASS_COUNTS) * 11_008 / 17_736
    assert np.all(np.abs(per_class - quotas) < 1)  # each class its share, rounded
    again, _ = proportional_split(labels, 11_008, SPLIT_SEED)
    assert np.array_equal(train, again)


def test_flowers102_trains_on_the_official_train_split(tmp_path):
    """The paper's 1,020 Flowers102 training images are the release's train split (setid.mat 'trnid')."""
    fixture = write_flowers102(tmp_path)
    info = get_dataset("flowers102")
    assert info.train_split == "train" and info.test_split == "test"
    assert info.load(info.train_split, root=str(fixture.root)).targets == fixture.targets["train"]
