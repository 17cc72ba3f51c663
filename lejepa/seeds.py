"""Every random draw of a run as a function of the run's seed and where it happens.

A draw that depends only on (seed, step) or (seed, epoch, image index) is the same after a resume, with any
number of data-loader workers, and on any number of ranks; this is what makes a resumed CPU run
bit-identical to an uninterrupted one. All draws derive their seed here.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, step, ...): equal parts give equal seeds in every process."""
    return hash(tuple(int(p) for p in parts)) % 2**63  # int tuples hash the same in every interpreter


def torch_generator(*parts: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(derive_seed(*parts))


def numpy_rng(*parts: int) -> np.random.Generator:
    return np.random.default_rng([int(p) for p in parts])


def slice_generator(seed: int, step: int) -> torch.Generator:
    """SIGReg's directions at (seed, step). A derivation of its own (not derive_seed), kept as first written
    because every run's slices, and so its numbers, come from it."""
    return torch.Generator(device="cpu").manual_seed(int(seed) * 1_000_003 + int(step))


def stream_generator(*parts: int) -> torch.Generator:
    """A generator from numpy's SeedSequence over `parts` (patch masks: seed, step, rank, group, stream)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0]))


def seed_everything(seed: int) -> None:
    """Seed the global generators (weight initialisation draws from them)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
