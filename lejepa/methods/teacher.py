"""An averaged copy of a student network, never trained by gradient: the teacher behind the official
commands' `teacher_student=true` and the paper's SWA (Section 6.1, Table 4; docs/lejepa.md section 2a).

Semantics follow stable-pretraining's `TeacherStudentWrapper` and `TeacherStudentCallback`: the copy starts
equal to the student (`warm_init`), and after every optimiser step becomes m * teacher + (1 - m) * student
for parameters and floating-point buffers alike (BatchNorm statistics included; integer buffers such as
`num_batches_tracked` are copied). Two ways to choose m:

- "ema": stable-pretraining's cosine from `start` (its base_ema_coefficient, 0.996) to `end`
  (final_ema_coefficient, 1.0) over training. stable-pretraining sets m once per epoch from
  epoch / max_epochs; here it is set every step from step / total_steps.
- "swa": an equally weighted running mean of the snapshots (Izmailov et al. 2018): after u updates the copy
  is the mean of the u + 1 snapshots seen (the initial copy included), so the next update uses
  m = (u + 1) / (u + 2).

The update count is a buffer, so it is saved and restored with the rest of the state.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

KINDS = ("ema", "swa")


def ema_momentum(step: int, total_steps: int, start: float, end: float) -> float:
    """Cosine from `start` at step 0 to `end` at total_steps."""
    return end - (end - start) * (1.0 + math.cos(math.pi * step / max(1, total_steps))) / 2.0


class AveragedCopy(nn.Module):
    """Averaged copies of named student modules (e.g. backbone, embedding, projector)."""

    def __init__(self, students: dict[str, nn.Module], kind: str, start: float = 0.996, end: float = 1.0):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"teacher must be one of {', '.join(KINDS)} (or 'none'), got '{kind}'")
        self.kind, self.start, self.end = kind, start, end
        self.copies = nn.ModuleDict({name: copy.deepcopy(module) for name, module in students.items()})
        self.copies.requires_grad_(False)  # never in the optimiser, never given a gradient
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def momentum(self, step: int, total_steps: int) -> float:
        if self.kind == "swa":
            updates = int(self.updates)
            return (updates + 1) / (updates + 2)
        return ema_momentum(step, total_steps, self.start, self.end)

    @torch.no_grad()
    def update(self, students: dict[str, nn.Module], step: int, total_steps: int) -> None:
        """Move each copy towards its student; call after the optimiser step."""
        m = self.momentum(step, total_steps)
        for name, student in students.items():
            teacher = self.copies[name]
            for mine, theirs in zip(teacher.parameters(), student.parameters(), strict=True):
                mine.mul_(m).add_(theirs.detach(), alpha=1.0 - m)
            for mine, theirs in zip(teacher.buffers(), student.buffers(), strict=True):
                if mine.is_floating_point():
                    mine.mul_(m).add_(theirs, alpha=1.0 - m)
                else:
                    mine.copy_(theirs)
        self.updates += 1
