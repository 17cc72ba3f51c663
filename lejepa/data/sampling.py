"""Deterministic, resumable sampling for pretraining.

Batches are a function of (seed, epoch, step) and each image's augmentation a function of
(seed, epoch, index), so a run resumed at step s sees exactly the batches and views an uninterrupted
run would, whatever the number of data-loader workers or ranks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from lejepa.seeds import derive_seed, numpy_rng


def balanced_subset(targets: Sequence[int], limit: int | None, seed: int) -> np.ndarray:
    """Indices of `limit` images with classes as balanced as the data allows (all images if None)."""
    indices = np.arange(len(targets))
    if limit is None or limit >= len(targets):
        return indices
    rng = np.random.default_rng(seed)
    labels = np.asarray(targets)
    per_class = [rng.permutation(indices[labels == c]) for c in np.unique(labels)]
    # Round-robin over classes: the first `limit` picks take an equal share from each class.
    order: list[int] = []
    for position in range(max(len(group) for group in per_class)):
        order.extend(group[position] for group in per_class if position < len(group))
    return np.sort(np.asarray(order[:limit]))


def resumable_batches(
    indices: np.ndarray, batch_size: int, seed: int, start_step: int, total_steps: int, rank: int = 0,
    world_size: int = 1,
) -> Iterator[list[tuple[int, int]]]:
    """Yield this rank's share of each global batch, from start_step to total_steps, as (epoch, index)
    keys. Each epoch is a fresh permutation drawn from (seed, epoch); the last partial batch is dropped."""
    steps_per_epoch = len(indices) // batch_size
    per_rank = batch_size // world_size
    epoch, order = None, None
    for step in range(start_step, total_steps):
        if step // steps_per_epoch != epoch:
            epoch = step // steps_per_epoch
            order = indices[numpy_rng(seed, epoch).permutation(len(indices))]
        first = (step % steps_per_epoch) * batch_size + rank * per_rank
        yield [(epoch, int(i)) for i in order[first : first + per_rank]]


class ViewDataset(torch.utils.data.Dataset):
    """Look up (epoch, index) keys and return (views, label) with views seeded by (seed, epoch, index);
    with make_views None, return the image itself (views are then made per batch)."""

    def __init__(self, dataset, make_views, seed: int):
        self.dataset, self.make_views, self.seed = dataset, make_views, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        image, label = self.dataset[index]
        if self.make_views is None:
            return image, label
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only (the same draws as torch.manual_seed): torch.manual_seed also queues a
            # seed for every accelerator back end, recording a stack trace each time, about 0.3 ms an image.
            torch.default_generator.manual_seed(derive_seed(self.seed, epoch, index))
            return self.make_views(image), label
