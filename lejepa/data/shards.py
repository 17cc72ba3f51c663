"""A dataset packed into a few large tar shards, read with random access: for ImageNet-scale training from
shared storage, where opening 1.28 M small files for hours is what NFS-class file systems do worst.

The shards are plain uncompressed POSIX tar files in WebDataset's layout (`<key>.<ext>` for the encoded
image, `<key>.cls` for the label as text, the files of one sample next to each other), so `tar`, WebDataset
and other tar readers can read them too. Next to them, index.npz gives each sample's shard, byte offset and
size, and index.json the dataset name, split, class names and shard names. The reader seeks straight to
an image (one pread per image from a file kept open), so sampling stays map-style: batches and views are
still functions of (seed, epoch, index) and a resumed or re-sharded run sees what an uninterrupted one
would. Images are stored as the source's encoded bytes, in the source dataset's order: index i of the
shards is index i of the folder tree, same pixels, same label.

Prepare once, then point data.root at the output:

    python -m lejepa.data.shards imagenet1k --root /data/imagenet --out /scratch/imagenet-shards
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tarfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

FORMAT = "lejepa-tar-shards-1"
INDEX_JSON, INDEX_ARRAYS = "index.json", "index.npz"


def is_shard_folder(folder: Path) -> bool:
    return (folder / INDEX_JSON).is_file() and (folder / INDEX_ARRAYS).is_file()


def write_shards(paths: Sequence[str], labels: Sequence[int], out: Path, *, dataset: str, split: str,
                 classes: Sequence[str] = (), shard_bytes: int = 512 * 2**20) -> int:
    """Pack the image files `paths` (with `labels`) into out/shard-NNNNN.tar of about `shard_bytes` each, in
    order, and write the index. Returns the number of shards. `out` must not hold shards already."""
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} image paths but {len(labels)} labels")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob("shard-*.tar")) or (out / INDEX_JSON).exists():
        raise FileExistsError(f"{out} already holds shards; remove them or choose another --out")
    shard_of, shard_names = np.empty(len(paths), np.int32), []
    with contextlib.ExitStack() as open_shards:
        tar, written = None, 0
        for index, (path, label) in enumerate(zip(paths, labels)):
            if tar is None or written >= shard_bytes:
                if tar is not None:
                    tar.close()
                shard_names.append(f"shard-{len(shard_names):05d}.tar")
                tar = open_shards.enter_context(tarfile.open(out / shard_names[-1], "w", format=tarfile.USTAR_FORMAT))
                written = 0
            data = Path(path).read_bytes()
            key, extension = f"{index:09d}", Path(path).suffix.lower().lstrip(".") or "img"
            for name, payload in ((f"{key}.{extension}", data), (f"{key}.cls", str(int(label)).encode())):
                member = tarfile.TarInfo(name)
                member.size = len(payload)
                tar.addfile(member, io.BytesIO(payload))
            shard_of[index], written = len(shard_names) - 1, written + len(data) + 1536  # + headers, padding
    offsets, sizes = _image_offsets(out, shard_names, len(paths))
    np.savez(out / INDEX_ARRAYS, shard=shard_of, offset=offsets, size=sizes, label=np.asarray(labels, np.int64))
    (out / INDEX_JSON).write_text(json.dumps({"format": FORMAT, "dataset": dataset, "split": split,
                                              "count": len(paths), "classes": list(classes), "shards": shard_names}))
    return len(shard_names)


def _image_offsets(out: Path, shard_names: list[str], count: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each image's bytes start in its shard, read back from the tar headers (tarfile's own offsets)."""
    offsets, sizes = np.empty(count, np.int64), np.empty(count, np.int64)
    for name in shard_names:
        with tarfile.open(out / name, "r") as tar:
            for member in tar:
                key, extension = member.name.split(".", 1)
                if extension != "cls":
                    offsets[int(key)], sizes[int(key)] = member.offset_data, member.size
    return offsets, sizes


class ShardDataset(torch.utils.data.Dataset):
    """(RGB PIL image, label) by index from a shard folder written by write_shards."""

    MAX_OPEN = 64  # shard files kept open per process (a data-loader worker touches every shard in time)

    def __init__(self, folder: Path, dataset: str | None = None):
        self.folder = Path(folder)
        meta = json.loads((self.folder / INDEX_JSON).read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{self.folder} holds shards of format {meta.get('format')!r}, expected {FORMAT!r}")
        if dataset is not None and meta["dataset"] != dataset:
            raise ValueError(f"{self.folder} holds shards of dataset '{meta['dataset']}', not '{dataset}'")
        arrays = np.load(self.folder / INDEX_ARRAYS)
        self._shard, self._offset, self._size = arrays["shard"], arrays["offset"], arrays["size"]
        self._labels = arrays["label"]
        self._shard_names = np.array(meta["shards"], dtype=np.bytes_)
        self.targets = self._labels.tolist()
        self.classes = list(meta["classes"])
        self._open: OrderedDict[int, int] = OrderedDict()  # shard -> file descriptor, least recently used first

    def __len__(self) -> int:
        return len(self._labels)

    def _descriptor(self, shard: int) -> int:
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._open[shard]
        if len(self._open) >= self.MAX_OPEN:
            os.close(self._open.popitem(last=False)[1])
        # pread ignores the file position, so a descriptor inherited by a forked worker is still safe.
        self._open[shard] = os.open(self.folder / os.fsdecode(self._shard_names[shard]), os.O_RDONLY)
        return self._open[shard]

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        data = os.pread(self._descriptor(int(self._shard[index])), int(self._size[index]), int(self._offset[index]))
        return Image.open(io.BytesIO(data)).convert("RGB"), int(self._labels[index])

    def __getstate__(self) -> dict:
        # A worker started by spawn gets a pickled copy: descriptor numbers mean nothing in another process.
        return {**self.__dict__, "_open": OrderedDict()}

    def __del__(self):
        for descriptor in getattr(self, "_open", {}).values():
            os.close(descriptor)


def main(argv: list[str] | None = None) -> None:
    from lejepa.data import get_dataset
    from lejepa.data.common import ImageFileDataset

    parser = argparse.ArgumentParser(description="Pack an image-file dataset into tar shards (lejepa/data/shards.py)")
    parser.add_argument("dataset", help="a registered dataset of image files, e.g. imagenet1k, imagenet100, imagenette")
    parser.add_argument("--root", help="where the dataset is (default: its registered location)")
    parser.add_argument("--out", required=True, type=Path, help="output folder; one subfolder per split")
    parser.add_argument("--splits", nargs="+", help="default: all of the dataset's splits")
    parser.add_argument("--shard-mb", type=int, default=512)
    args = parser.parse_args(argv)
    info = get_dataset(args.dataset)
    for split in args.splits or info.splits:
        source = info.load(split, args.root)
        if not isinstance(source, ImageFileDataset):
            raise SystemExit(f"dataset '{args.dataset}' at {info.resolve_root(args.root)} is not a tree of image "
                             f"files (it loads as {type(source).__name__}); only such datasets are sharded")
        count = write_shards(source.paths, source.targets, args.out / split, dataset=args.dataset, split=split,
                             classes=source.classes, shard_bytes=args.shard_mb * 2**20)
        print(f"{args.dataset} {split}: {len(source)} images in {count} shards under {args.out / split}")
    print(f"train with data.name={args.dataset} data.root={args.out}")


if __name__ == "__main__":
    main()
