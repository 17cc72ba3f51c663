"""Reference rows measured in the same run as the methods: an untrained backbone and raw pixels.

Neither pretrains. `random_init` evaluates the randomly initialised backbone; `raw_pixels` makes the
frozen features the normalised pixels themselves (evaluation reads `features_from_pixels`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lejepa.methods.base import Method
from lejepa.methods.registry import register_method


@dataclass(frozen=True)
class NoOptions:
    pass


@register_method
class RandomInit(Method):
    name = "random_init"
    summary = "reference row: the randomly initialised backbone, not trained"
    Options = NoOptions
    pretrains = False


@register_method
class RawPixels(Method):
    name = "raw_pixels"
    summary = "reference row: the normalised pixels themselves as features"
    Options = NoOptions
    pretrains = False
    features_from_pixels = True
