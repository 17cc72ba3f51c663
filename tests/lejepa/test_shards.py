"""Tar shards (lejepa/data/shards.py): the same images and labels as the folder tree, in the same order, read
by index; plain tar files in WebDataset's layout; one command prepares them and the loaders find them."""

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_datasets import write_imagenette
from PIL import Image

from lejepa.crops import CropViews
from lejepa.data import get_dataset
from lejepa.data.common import ImageFileDataset
from lejepa.data.sampling import ViewDataset
from lejepa.data.shards import ShardDataset, is_shard_folder, main, write_shards
from lejepa.spec import ViewSpec


@pytest.fixture
def images(tmp_path) -> ImageFileDataset:
    """Seven noise images of different sizes, JPEG and PNG, labels 0-6."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(7):
        pixels = rng.integers(0, 256, (20 + 3 * i, 31 - 2 * i, 3), dtype=np.uint8)
        paths.append(tmp_path / "src" / f"img{i}.{'png' if i % 3 == 0 else 'jpg'}")
        paths[-1].parent.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(paths[-1])
    return ImageFileDataset(paths, list(range(7)), classes=[f"c{i}" for i in range(7)])


def _pixels(image) -> np.ndarray:
    return np.asarray(image)


def test_shards_serve_the_folders_images_and_labels_in_order(images, tmp_path):
    count = write_shards(images.paths, images.targets, tmp_path / "shards", dataset="toy", split="train",
                         classes=images.classes, shard_bytes=3000)  # a few images a shard
    assert count >= 3 and is_shard_folder(tmp_path / "shards")
    shards = ShardDataset(tmp_path / "shards", dataset="toy")
    assert len(shards) == 7 and shards.targets == images.targets and shards.classes == images.classes
    for index in (6, 0, 3, 5, 1, 2, 4):  # random access, across shards
        (image, label), (expected, expected_label) = shards[index], images[index]
        assert label == expected_label and image.mode == "RGB"
        assert np.array_equal(_pixels(image), _pixels(expected))  # the same encoded bytes, decoded alike
    # the views of a key are the same whichever copy is read
    make = CropViews(ViewSpec(global_views=1, local_views=1, global_size=16, local_size=8), 16)
    (crops_a, params_a), _ = ViewDataset(shards, make, seed=1)[(2, 5)]
    (crops_b, params_b), _ = ViewDataset(images, make, seed=1)[(2, 5)]
    assert all(torch.equal(a, b) for a, b in zip(crops_a, crops_b)) and torch.equal(params_a, params_b)


def test_shards_are_plain_tar_in_webdataset_layout(images, tmp_path):
    write_shards(images.paths, images.targets, tmp_path / "shards", dataset="toy", split="train")
    with tarfile.open(tmp_path / "shards" / "shard-00000.tar") as tar:
        names = tar.getnames()
        assert names[:4] == ["000000000.png", "000000000.cls", "000000001.jpg", "000000001.cls"]
        assert tar.extractfile("000000001.cls").read() == b"1"
        assert tar.extractfile("000000001.jpg").read() == Path(images.paths[1]).read_bytes()


def test_shards_refuse_to_overwrite_and_to_be_read_as_another_dataset(images, tmp_path):
    write_shards(images.paths, images.targets, tmp_path / "shards", dataset="toy", split="train")
    with pytest.raises(FileExistsError, match="already holds shards"):
        write_shards(images.paths, images.targets, tmp_path / "shards", dataset="toy", split="train")
    with pytest.raises(ValueError, match="holds shards of dataset 'toy', not 'imagenet1k'"):
        ShardDataset(tmp_path / "shards", dataset="imagenet1k")
    with pytest.raises(ValueError, match="7 image paths but 6 labels"):
        write_shards(images.paths, images.targets[:6], tmp_path / "other", dataset="toy", split="train")


def test_a_pickled_copy_opens_its_own_files(images, tmp_path):
    """A worker started by spawn receives a pickled dataset: it must not reuse the parent's descriptors."""
    write_shards(images.paths, images.targets, tmp_path / "shards", dataset="toy", split="train", shard_bytes=3000)
    shards = ShardDataset(tmp_path / "shards")
    shards.MAX_OPEN = 2
    first = [_pixels(shards[i][0]) for i in range(7)]  # more shards than MAX_OPEN: files are closed and reopened
    assert len(shards._open) == 2
    copy = pickle.loads(pickle.dumps(shards))
    assert copy._open == {} and all(np.array_equal(_pixels(copy[i][0]), first[i]) for i in range(7))


def test_one_command_prepares_shards_that_the_loader_then_reads(tmp_path, capsys):
    fixture = write_imagenette(tmp_path / "src")
    main(["imagenette", "--root", str(fixture.root), "--out", str(tmp_path / "shards"), "--shard-mb", "1"])
    assert "train with data.name=imagenette data.root=" in capsys.readouterr().out
    info = get_dataset("imagenette")
    for split in info.splits:
        folder, shards = info.load(split, str(fixture.root)), info.load(split, str(tmp_path / "shards"))
        assert isinstance(shards, ShardDataset) and shards.targets == folder.targets == fixture.targets[split]
        assert np.array_equal(_pixels(shards[0][0]), _pixels(folder[0][0]))
