"""Multi-process set-up: one process per device, joined in a torch.distributed process group.

Two launchers are understood (DESIGN.md section 1):
- torchrun (or anything that exports RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK);
- a submitit job (SLURM or submitit's local executor, SUBMITIT_EXECUTOR set), whose task layout
  submitit.helpers.TorchDistributedEnvironment turns into those same variables.
Anything else is a single process, and nothing is initialised. A rank uses the GPU numbered LOCAL_RANK
(modulo the GPUs it can see) with NCCL, or the CPU with gloo.

SIGReg needs no more than this: lejepa.sigreg all-reduces its sums over whatever group is initialised,
and lejepa.train wraps the model in DDP when one is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedEnv:
    """Where this process sits: what the launcher said, before any process group exists."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launcher: str = "none"  # "torchrun", "submitit" or "none"


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None: single process, no group
    initialised_here: bool  # False when a group already existed (teardown leaves it to its owner)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect_environment() -> DistributedEnv:
    """Read the launcher's variables; for submitit, export the env:// variables torch needs."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        local = int(env.get("LOCAL_RANK", env["RANK"]))
        return DistributedEnv(int(env["RANK"]), int(env["WORLD_SIZE"]), local, "torchrun")
    if env.get("SUBMITIT_EXECUTOR") in ("slurm", "local"):
        import submitit

        job = submitit.JobEnvironment()
        if job.num_tasks <= 1:
            return DistributedEnv()
        # MASTER_ADDR = first host of the job, MASTER_PORT derived from the job id: the same on every task.
        # CUDA_VISIBLE_DEVICES is left alone: local_device picks the GPU by LOCAL_RANK instead, which also
        # works when SLURM already restricted the visible devices.
        torch_env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return DistributedEnv(torch_env.rank, torch_env.world_size, torch_env.local_rank, "submitit")
    return DistributedEnv()


def local_device(name: str = "auto", local_rank: int | None = None) -> torch.device:
    """The device for this rank: 'auto' or 'cuda' mean GPU LOCAL_RANK (mod the visible GPUs) when there is
    one; an explicit index ('cuda:1') or 'cpu' is kept as given."""
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        if not torch.cuda.is_available():
            raise RuntimeError("train.device is 'cuda' but no GPU is visible to this process; use 'cpu' or 'auto'")
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    return device


def init_distributed(device: str = "auto", backend: str | None = None, timeout_s: float = 1800) -> DistributedContext:
    """Join the process group the launcher describes (no-op for a single process) and pick the device.

    The backend defaults to NCCL on GPUs and gloo on the CPU. A group that already exists is reused."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistributedContext(rank, world, local, _select(device, local), dist.get_backend(), False)
    env = detect_environment()
    chosen = _select(device, env.local_rank)
    if env.world_size <= 1:
        return DistributedContext(0, 1, 0, chosen, None, False)
    if not dist.is_available():
        raise RuntimeError(f"{env.launcher} started {env.world_size} processes but this torch has no distributed")
    backend = backend or ("nccl" if chosen.type == "cuda" else "gloo")
    dist.init_process_group(
        backend, init_method="env://", rank=env.rank, world_size=env.world_size, timeout=timedelta(seconds=timeout_s)
    )
    return DistributedContext(env.rank, env.world_size, env.local_rank, chosen, backend, True)


def _select(device: str, local_rank: int) -> torch.device:
    chosen = local_device(device, local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)  # NCCL and any bare .cuda() then use this rank's own GPU
    return chosen


def teardown_distributed(context: DistributedContext, barrier: bool = True) -> None:
    """Leave the group if this process created it, after a barrier so that no rank exits while another is
    still in a collective (skipped after an error: the other ranks may never reach it)."""
    if context.initialised_here and dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()


@contextmanager
def distributed(device: str = "auto", backend: str | None = None) -> Iterator[DistributedContext]:
    """`with distributed() as ctx:` init_distributed, then teardown whatever happens inside."""
    context = init_distributed(device, backend)
    try:
        yield context
    except BaseException:
        teardown_distributed(context, barrier=False)
        raise
    teardown_distributed(context)
