"""ImageNet-1k from a local copy of the Hugging Face release (ILSVRC/imagenet-1k), read offline.

Two on-disk forms are accepted under the root:
- a `save_to_disk` folder (dataset_dict.json plus one Arrow folder per split), memory-mapped as is;
- the release's parquet shards (data/train-00000-of-00294.parquet, ...; columns image {bytes, path}
  and label), which `datasets` converts once into its Arrow cache ($HF_DATASETS_CACHE if set).
The root may also be a Hub dataset id (data.root=ILSVRC/imagenet-1k): its shards are then read from the
snapshot that `huggingface-cli download` left in the local Hub cache. When the root is not a folder, that
cache is tried for the release's id. Nothing is fetched from the Hub: only local files are named.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from PIL import Image

from lejepa.data.registry import DatasetNotFound, register_dataset

HF_IMAGENET_ID = "ILSVRC/imagenet-1k"
HF_IMAGENET_HOW = (
    f"on a machine with Hub access, `huggingface-cli download {HF_IMAGENET_ID} --repo-type dataset "
    "--local-dir DIR` (after accepting the licence on the dataset page), or datasets.load_dataset(...)"
    ".save_to_disk(DIR); then copy DIR here. Without --local-dir the download lands in the Hub cache "
    f"($HF_HUB_CACHE), which is read with data.root={HF_IMAGENET_ID}"
)
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


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


def hub_cache_dir() -> Path:
    """The local Hugging Face Hub cache, found as huggingface_hub finds it: $HF_HUB_CACHE, else
    $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    home = os.environ.get("HF_HOME") or os.path.join(xdg_cache, "huggingface")
    return Path(home).expanduser() / "hub"


def cached_hub_snapshot(repo_id: str, revision: str = "main") -> tuple[Path, Path | None]:
    """(where the Hub cache keeps dataset `repo_id`, its snapshot of `revision` or None if not cached).

    The cache layout: datasets--OWNER--NAME/refs/REVISION holds a commit hash, and
    datasets--OWNER--NAME/snapshots/HASH/ mirrors the repository's files (as links into blobs/)."""
    repo = hub_cache_dir() / f"datasets--{repo_id.replace('/', '--')}"
    ref = repo / "refs" / revision
    if not ref.is_file():
        return repo, None
    snapshot = repo / "snapshots" / ref.read_text().strip()
    return repo, snapshot if snapshot.is_dir() else None


def load_huggingface_split(name: str, root: Path, split: str, how_to_get: str, repo_id: str | None = None):
    """A split of a Hugging Face dataset stored locally as save_to_disk output or parquet shards.

    `root` is a folder, or a Hub dataset id whose snapshot is in the local Hub cache; when `root` is not
    a folder, `repo_id` (the dataset's own id) is looked up in that cache too."""
    import datasets

    looked_in_cache = ""
    if not root.is_dir():
        candidate = str(root) if _REPO_ID.fullmatch(str(root)) else repo_id
        if candidate:
            cache, snapshot = cached_hub_snapshot(candidate)
            if snapshot is None:
                looked_in_cache = f" (also looked for a Hub-cache snapshot of {candidate} in {cache})"
            else:
                root = snapshot
    if (root / "dataset_dict.json").exists():
        saved = datasets.load_from_disk(str(root))
        if split not in saved:
            raise DatasetNotFound(name, root, f"split '{split}' (saved splits: {list(saved)})", how_to_get)
        return saved[split]
    shards = _parquet_shards(root, split) if root.is_dir() else []
    if not shards:
        raise DatasetNotFound(
            name, root, f"dataset_dict.json (a save_to_disk folder) or {split}-*.parquet shards{looked_in_cache}",
            how_to_get,
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
    return HuggingFaceImageDataset(
        load_huggingface_split("imagenet1k_hf", root, split, HF_IMAGENET_HOW, repo_id=HF_IMAGENET_ID)
    )
