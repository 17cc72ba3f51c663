"""Notice a non-finite loss without a host sync every step.

`observe` runs every step and only records, on the device, the first step whose loss was not finite (and
that step's loss parts). `first_bad_step` reads it back (one sync, agreed by all ranks) and is called by
the trainer before it logs or writes a checkpoint, so a diverged run stops before anything from or after
the bad step is saved.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from lejepa.distributed import world_size

NO_STEP = torch.iinfo(torch.int64).max


class DivergenceWatch:
    def __init__(self, device: torch.device):
        self._first = torch.tensor(NO_STEP, dtype=torch.int64, device=device)
        self._bad_values: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None
        self._parts: list[str] = []

    def observe(self, step: int, loss: torch.Tensor, parts: dict[str, torch.Tensor]) -> None:
        finite = torch.isfinite(loss.detach())
        self._first = torch.where(finite | (self._first != NO_STEP), self._first,
                                  torch.full_like(self._first, step))
        if self._bad_values is None:  # keep the loss values of the first bad step, still without a sync
            self._parts = list(parts)
            self._bad_values = (loss.detach().float(), {k: v.detach().float() for k, v in parts.items()})
        else:
            keep = self._first != step  # overwrite only at the first bad step itself
            old_loss, old_parts = self._bad_values
            self._bad_values = (torch.where(keep, old_loss, loss.detach().float()),
                                {k: torch.where(keep, old_parts[k], parts[k].detach().float()) for k in parts})

    def first_bad_step(self) -> int | None:
        """The first step with a non-finite loss on any rank, or None."""
        first = self._first.clone()
        if world_size() > 1:
            dist.all_reduce(first, op=dist.ReduceOp.MIN)
        value = int(first.item())
        self._first_seen = value
        return None if value == NO_STEP else value

    def reason(self) -> str:
        loss, parts = self._bad_values if self._bad_values is not None else (torch.tensor(float("nan")), {})
        shown = ", ".join(f"{k}={v.item():.4g}" for k, v in parts.items())
        return (f"loss became {loss.item()} at step {self._first_seen} (parts: {shown}); nothing from this step "
                f"on was saved. Lower train.lr, raise train.warmup_fraction or set train.grad_clip")

    @staticmethod
    def global_values(loss: torch.Tensor, parts: dict[str, torch.Tensor]) -> tuple[float, dict[str, float]]:
        """The loss and its parts averaged over ranks, as Python floats (with equal shards: the global batch's)."""
        values = torch.stack([loss.detach().float(), *(v.detach().float() for v in parts.values())])
        if world_size() > 1:
            dist.all_reduce(values)
            values /= world_size()
        return values[0].item(), dict(zip(parts, values[1:].tolist()))
