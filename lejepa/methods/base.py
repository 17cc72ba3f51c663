"""The method interface (STYLE.md: solo-learn's small surface, one file per method).

A method owns its heads and its loss and any per-step update (an EMA teacher, say). The trainer only
calls `loss(views, step)` and `on_step_end(step, total_steps)`. Options are a dataclass per method, so
an unknown option in a manifest is caught before anything runs.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import ClassVar

import torch
from torch import nn

from lejepa.backbones import Backbone
from lejepa.spec import RunSpec


class Method(nn.Module):
    name: ClassVar[str]
    Options: ClassVar[type]
    pretrains: ClassVar[bool] = True  # False: evaluated as built (reference rows: random init, pixels)

    def __init__(self, backbone: Backbone, options, spec: RunSpec):
        super().__init__()
        self.backbone, self.options = backbone, options
        self.num_global = spec.views.global_views  # views[:num_global] are the global crops

    def embed_views(self, views: list[torch.Tensor], head: nn.Module) -> torch.Tensor:
        """Run views through backbone and `head`, batching views of equal size; returns (V, B, D)."""
        outputs: list[torch.Tensor] = []
        start = 0
        while start < len(views):
            end = start
            while end < len(views) and views[end].shape == views[start].shape:
                end += 1
            batch = torch.cat(views[start:end])
            outputs.extend(head(self.backbone(batch)).chunk(end - start))
            start = end
        return torch.stack(outputs)

    def forward(self, views: list[torch.Tensor], step: int):
        """DDP wraps forward(), so the loss is computed through it."""
        return self.loss(views, step)

    def loss(self, views: list[torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Per-step update after the optimiser step (e.g. an EMA teacher). Nothing by default."""

    def evaluation_backbone(self) -> Backbone:
        """The weights frozen evaluation measures: the trained backbone, unless a method says otherwise
        (DINO evaluates its EMA teacher)."""
        return self.backbone


METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    if cls.name in METHODS:
        raise ValueError(f"method '{cls.name}' is registered twice")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown method '{name}'{hint} (known: {', '.join(sorted(METHODS))})")
    return METHODS[name]


def parse_options(method_section: dict) -> tuple[type[Method], object]:
    """{'name': ..., **options} -> (method class, its Options), naming any unknown or mistyped option."""
    cls = get_method(method_section.get("name", ""))
    options = {k: v for k, v in method_section.items() if k != "name"}
    known = {f.name: f for f in dataclasses.fields(cls.Options)}
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"method '{cls.name}' has no option '{key}'{hint} (options: {', '.join(known) or 'none'})")
    return cls, cls.Options(**options)
