"""CPU threads: one for small work, one for a GPU run's training process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch's intra-op pool at one thread inside, the previous count again afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def training_threads(device: torch.device) -> Iterator[None]:
    """One CPU thread for a GPU run's training, the task's threads again afterwards.

    On a GPU the training process's own CPU work is launching kernels and taking batches off the loader's
    queue; the crops run in the DataLoader's worker processes (num_workers auto: the task's other CPUs,
    lejepa/data/common.py), each with one thread. A full OpenMP pool in the training process would compete
    with those workers for the same cores. Evaluation afterwards (feature gathering, CPU-side probes) gets the
    threads back. A CPU run keeps its threads throughout: there the training process does the work."""
    if device.type != "cuda":
        yield
        return
    with one_thread():
        yield
