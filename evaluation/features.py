"""Frozen features, extracted once without augmentation, on every rank, and cached per run (docs/evaluation.md
section 1).

Every probe reads these tensors; none runs the backbone itself. Extraction is sharded over the ranks of the
run's process group: the images are cut into batches of `eval.batch_size`, each rank takes a contiguous run
of whole batches (so every batch is the one a single process would form, and the features are the ones it
would compute), and the shards are gathered on rank 0 in row chunks (bounded memory on its GPU). On CUDA the
backbone runs under bf16 autocast (as in training, unless train.precision is fp32); features are stored as
float32 on the CPU. Only rank 0 holds the features afterwards; the other ranks get None.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from lejepa.checkpoint import set_aside
from lejepa.distributed import rank, rank_zero_says, world_size
from lejepa.files import atomic_write_bytes
from lejepa.views import eval_transform

GATHER_ROWS = 16384  # rows per gather: rank 0's GPU holds world x this many rows of one readout at a time

Readouts = dict[str, torch.Tensor]  # name -> (N, D) features of the same N images


class _Transformed(torch.utils.data.Dataset):
    def __init__(self, dataset, indices: np.ndarray, transform):
        self.dataset, self.indices, self.transform = dataset, indices, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, label = self.dataset[int(self.indices[i])]
        return self.transform(image), label


def shard_bounds(count: int, batch_size: int, ranks: int) -> list[tuple[int, int]]:
    """[start, end) of each rank's images: contiguous runs of whole batches, as even as batches allow, the
    earlier ranks taking the extra ones (so rank 0 has images whenever there are any)."""
    batches = math.ceil(count / batch_size)
    cuts = [min(count, -(-batches * r // ranks) * batch_size) for r in range(ranks + 1)]
    return list(itertools.pairwise(cuts))


def _comm_device(device: torch.device) -> torch.device:
    """Where collectives move tensors: the GPU under NCCL, the CPU under gloo."""
    return device if dist.get_backend() == "nccl" else torch.device("cpu")


def gather_rows(local: torch.Tensor, bounds: list[tuple[int, int]], device: torch.device) -> torch.Tensor | None:
    """Rank 0: every rank's rows (their shard sizes in `bounds`) concatenated in rank order; others None.
    Rows travel in chunks of GATHER_ROWS, padded to one size per chunk."""
    sizes = [end - start for start, end in bounds]
    comm, this = _comm_device(device), rank()
    received: list[list[torch.Tensor]] = [[] for _ in sizes]
    for start in range(0, max(sizes), GATHER_ROWS):
        piece = torch.zeros((GATHER_ROWS, *local.shape[1:]), dtype=local.dtype, device=comm)
        mine = local[start : start + GATHER_ROWS]
        piece[: len(mine)] = mine.to(comm)
        pieces = [torch.empty_like(piece) for _ in sizes] if this == 0 else None
        dist.gather(piece, pieces, dst=0)
        if this == 0:
            for r, size in enumerate(sizes):
                received[r].append(pieces[r][: max(0, min(GATHER_ROWS, size - start))].cpu())
    return torch.cat([row for per_rank in received for row in per_rank]) if this == 0 else None


@torch.no_grad()
def extract_features(
    encode: Callable[[torch.Tensor], Readouts], dataset, indices: np.ndarray, image_size: int, mean, std,
    batch_size: int, device: torch.device, num_workers: int = 0, bf16: bool = False,
) -> tuple[Readouts, torch.Tensor] | None:
    """encode(images) -> {name: (B, D)} for each image of `dataset[indices]`, sharded over the ranks; rank 0
    gets float32 features and labels of all images, in `indices` order, other ranks None."""
    world = world_size()
    bounds = shard_bounds(len(indices), batch_size, world)
    start, end = bounds[rank()]
    loader = torch.utils.data.DataLoader(
        _Transformed(dataset, indices[start:end], eval_transform(image_size, mean, std)),
        batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=device.type == "cuda",
    )
    parts: dict[str, list[torch.Tensor]] = {}
    labels = []
    for images, batch_labels in loader:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            readouts = encode(images.to(device, non_blocking=True))
        for name, values in readouts.items():
            parts.setdefault(name, []).append(values.float().cpu())
        labels.append(batch_labels)
    local = {name: torch.cat(values) for name, values in parts.items()}
    local_labels = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64)
    if world == 1:
        return local, local_labels
    names = sorted(_agreed_names(local))
    gathered = {name: gather_rows(local[name], bounds, device) for name in names}
    gathered_labels = gather_rows(local_labels.long(), bounds, device)
    return (gathered, gathered_labels) if rank() == 0 else None


def _agreed_names(local: Readouts) -> set[str]:
    """Readout names and widths are the encoder's, the same on every rank; a rank with no image (more ranks
    than batches) learns them from rank 0."""
    shapes = [{name: tuple(t.shape[1:]) for name, t in local.items()} if rank() == 0 else None]
    dist.broadcast_object_list(shapes, src=0)
    for name, shape in shapes[0].items():
        local.setdefault(name, torch.zeros((0, *shape)))
    return set(shapes[0])


def cached(path: Path, key: str, compute):
    """Load what was saved under `key` (which names the weights, images, readouts and precision), else
    compute and save. A cache that does not load (empty, truncated, foreign) is set aside, kept, and
    recomputed. With several ranks, rank 0 decides and every rank takes part in `compute` (which gathers
    on rank 0); ranks other than 0 get None."""
    found = _load(path, key) if rank() == 0 else None
    if rank_zero_says(found is not None):
        return found
    result = compute()
    if rank() == 0:
        atomic_write_bytes(path, lambda f: torch.save({"key": key, "features": result[0], "labels": result[1]}, f))
    return result


def _load(path: Path, key: str):
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or not {"key", "features", "labels"} <= set(saved):
            raise ValueError("not a feature cache")
    except Exception as error:  # noqa: BLE001  any unreadable file: recomputing is always possible
        aside = set_aside(path)
        warnings.warn(f"feature cache {path} is unreadable ({error}); kept as {aside.name}, recomputing",
                      stacklevel=3)
        return None
    return (saved["features"], saved["labels"]) if saved["key"] == key else None


def embedding_spectrum(features: torch.Tensor, keep: int = 512) -> list[float]:
    """Eigenvalues of the feature covariance, descending: flat means isotropic, a cliff means collapse."""
    centred = features.double() - features.double().mean(0)
    covariance = centred.T @ centred / max(1, len(features) - 1)
    return torch.linalg.eigvalsh(covariance).flip(0)[:keep].tolist()
