"""ImageNet-1k from a local copy of the Hugging Face release (ILSVRC/imagenet-1k), read offline.

Two on-disk forms are accepted under the root:
- a `save_to_disk` folder (dataset_dict.json plus one Arrow folder per split), memory-mapped as is;
- the release's parquet shards (data/train-00000-of-00294.parquet, ...; columns image {bytes, path}
  and label), which `datasets` converts once into its Arrow cache ($HF_DATASETS_CACHE if set).
Nothing is fetched from the Hub: only local files are named.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image

from lejepa.data.registry import DatasetNotFound, register_dataset

HF_IMAGENET_HOW = (
    "on a machine with Hub access, `huggingface-cli download ILSVRC/imagenet-1k --repo-type dataset "
    "--local-dir DIR` (after accepting the licence on the dataset page), or datasets.load_dataset(...)"
    ".save_to_disk(DIR); then copy DIR here"
)


class HuggingFaceImageDataset(torch.utils.data.Dataset):
    """A `datasets.Dataset` with an image column and an int label column, served as (RGB PIL, label)."""

    def __init__(self, table, image_key: str = "image", label_key: str = "label"):
        import datasets

        for key in (image_key, label_key):
            if key not in table.column_names:
                raise ValueError(f"expected columns '{image_key}' and '{label_key}', found {table.column_names}")
        if not isinstance(table.features[image_key], datasets.Image):
            # Shards written without Hugging Face's schema metadata store the struct {bytes, path}.
            table = table.cast_column(image_key, datasets.Image())
        self.table, self.image_key = table, image_key
        # Only the label column is read (through Arrow), so no image is decoded here.
        self.targets = [int(y) for y in table.select_columns([label_key]).to_pandas()[label_key]]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        image = self.table[int(index)][self.image_key]
        return image.convert("RGB"), self.targets[index]


def _parquet_shards(root: Path, split: str) -> list[str]:
    # The Hub layout names shards <split>-NNNNN-of-NNNNN.parquet; a per-split folder also works.
    shards = set(root.rglob(f"{split}-*.parquet")) | set((root / split).glob("*.parquet"))
    return sorted(str(p) for p in shards)


def load_huggingface_split(name: str, root: Path, split: str, how_to_get: str):
    """A split of a Hugging Face dataset stored locally as save_to_disk output or parquet shards."""
    import datasets

    if (root / "dataset_dict.json").exists():
        saved = datasets.load_from_disk(str(root))
        if split not in saved:
            raise DatasetNotFound(name, root, f"split '{split}' (saved splits: {list(saved)})", how_to_get)
        return saved[split]
    shards = _parquet_shards(root, split) if root.is_dir() else []
    if not shards:
        raise DatasetNotFound(
            name, root, f"dataset_dict.json (a save_to_disk folder) or {split}-*.parquet shards", how_to_get
        )
    return datasets.load_dataset(
        "parquet", data_files={split: shards}, split=split, cache_dir=os.environ.get("HF_DATASETS_CACHE")
    )


@register_dataset(
    "imagenet1k_hf",
    num_classes=1000,
    image_size=224,
    splits=("train", "validation"),
    default_root="imagenet-1k-hf",
    how_to_get=HF_IMAGENET_HOW,
)
def imagenet1k_hf(root: Path, split: str) -> HuggingFaceImageDataset:
    """ImageNet-1k as released on the Hugging Face Hub (labels 0..999 in the standard sorted-wnid order);
    its 'test' split has no labels, so 'validation' is the test split here."""
    return HuggingFaceImageDataset(load_huggingface_split("imagenet1k_hf", root, split, HF_IMAGENET_HOW))
