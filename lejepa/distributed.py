"""Multi-process training: one process per device, joined in one torch.distributed process group.

`join_process_group` is what every launched job calls before training. It understands two launchers:
torchrun (or anything exporting RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK), and a submitit job
(SLURM or submitit's local executor) with several tasks, whose layout submitit turns into those same
variables. Anything else is one process and nothing is initialised. A rank uses GPU LOCAL_RANK (modulo
the visible GPUs) with NCCL, or the CPU with gloo. The group's timeout is explicit and generous (torch's
default of 10 minutes is shorter than a large checkpoint load or a slow first compile on one rank).

The rest of the suite asks `rank()` and `world_size()`: SIGReg all-reduces its sums over whatever group is
initialised, and the trainer wraps the model in DDP when there is one.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

DEFAULT_TIMEOUT_MINUTES = 30
TIMEOUT_ENV = "LEJEPA_DIST_TIMEOUT_MIN"


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def average_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over ranks (a new tensor, outside autograd); the tensor itself with one process."""
    if world_size() == 1:
        return tensor
    averaged = tensor.detach().clone()
    dist.all_reduce(averaged)
    return averaged / world_size()


def rank_zero_says(answer: bool) -> bool:
    """Rank 0's `answer` on every rank (a one-element broadcast, on the GPU under NCCL, which has no CPU
    transport)."""
    if world_size() == 1:
        return answer
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    flag = torch.tensor([int(answer)], device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


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


def _export_submitit_layout() -> bool:
    """In a submitit job of several tasks, export torch's env:// variables; False for a one-task job."""
    if os.environ.get("SUBMITIT_EXECUTOR") not in ("slurm", "local"):
        return False
    import submitit

    if submitit.JobEnvironment().num_tasks <= 1:
        return False
    # MASTER_ADDR = the job's first host, MASTER_PORT derived from the job id: the same on every task.
    # CUDA_VISIBLE_DEVICES is left alone: local_device picks the GPU by LOCAL_RANK, which also works when
    # SLURM already restricted the visible devices.
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return True


def join_process_group(device: str = "auto", timeout_minutes: float | None = None) -> bool:
    """Join the group the launcher describes, if it describes one; True when a group exists afterwards."""
    if is_distributed():
        return True
    launched = ("RANK" in os.environ and "WORLD_SIZE" in os.environ) or _export_submitit_layout()
    if not launched or int(os.environ["WORLD_SIZE"]) <= 1:
        return False
    chosen = local_device(device)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)  # NCCL and any bare .cuda() then use this rank's own GPU
    minutes = timeout_minutes or float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_MINUTES))
    dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", init_method="env://",
                            timeout=timedelta(minutes=minutes))
    return True


def broadcast_state(state: object, device: torch.device) -> object:
    """Rank 0's `state` (nested dicts/lists of tensors and plain values; None on the other ranks) on every
    rank. The structure travels pickled, without its tensors; each tensor then travels with one broadcast
    on `device`, so a resume reads the checkpoint from shared storage once, not once per rank."""
    if world_size() == 1:
        return state
    tensors: list[torch.Tensor] = []

    def strip(node):
        if isinstance(node, torch.Tensor):
            tensors.append(node)
            return ("__tensor__", len(tensors) - 1, tuple(node.shape), node.dtype)
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return type(node)(strip(v) for v in node)
        return node

    skeleton = [strip(state) if rank() == 0 else None]
    dist.broadcast_object_list(skeleton, src=0, device=device if device.type == "cuda" else None)
    received: list[torch.Tensor] = []

    def fill(node):
        if isinstance(node, tuple) and len(node) == 4 and node[0] == "__tensor__":
            _, index, shape, dtype = node
            tensor = tensors[index].to(device) if rank() == 0 else torch.empty(shape, dtype=dtype, device=device)
            dist.broadcast(tensor, src=0)
            received.append(tensor)
            return tensor.cpu() if device.type == "cuda" else tensor
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return type(node)(fill(v) for v in node)
        return node

    return fill(skeleton[0])
