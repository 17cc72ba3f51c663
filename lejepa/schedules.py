"""The step schedules the suite uses, in one place: warm-up then cosine, and a plain cosine ramp.

Used by pretraining (learning rate: LeJEPA paper section 6 and the official recipe, linear warm-up then
cosine), the linear probe (the same shape, decaying to zero) and DINO (teacher momentum, a cosine ramp to 1,
Caron et al. 2021).
"""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, peak: float, warmup_steps: int, floor: float = 0.0) -> float:
    """Linear warm-up to `peak` over `warmup_steps` (step 0 already takes 1/warmup of it), then a cosine from
    `peak` down to `floor` at the last step."""
    warmup_steps = max(1, warmup_steps)
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def cosine_ramp(step: int, total_steps: int, start: float, end: float) -> float:
    """`start` at step 0, `end` at step total_steps, along half a cosine."""
    return end - (end - start) * (1.0 + math.cos(math.pi * step / total_steps)) / 2.0


def linear_ramp(step: int, ramp_steps: float, start: float, end: float) -> float:
    """From `start` at step 0 linearly to `end` at `ramp_steps`, then constant."""
    if step >= ramp_steps:
        return end
    return start + (end - start) * step / ramp_steps
