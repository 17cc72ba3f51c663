"""The method interface (one small surface, one file per method, as solo-learn does).

A method owns its heads, its loss, any per-step update (an EMA teacher, say), its optimiser recipe and its
view recipe (VIEW_RECIPE: the view settings it uses where the manifest leaves them null). The trainer calls
`views(view_spec)` and `optimizer(train_spec)` once, then `loss(views, step)` and
`on_step_end(step, total_steps)` every step. Options are a dataclass per method, checked on construction (lejepa/options.py), so an unknown
or out-of-range option in a manifest is refused before anything runs.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from lejepa.backbones import Backbone
from lejepa.photometric import PAPER_JITTER
from lejepa.spec import RunSpec, TrainSpec, ViewSpec


class Method(nn.Module):
    name: ClassVar[str]
    summary: ClassVar[str] = ""  # one line for `lejepa describe method NAME`
    Options: ClassVar[type]
    pretrains: ClassVar[bool] = True  # False: evaluated as built (reference rows: random init, pixels)
    # View settings the method uses where the manifest leaves them null. Every method here shares the
    # paper's jitter (as SimCLR, DINO and VICReg publish it); a method with another recipe overrides this.
    VIEW_RECIPE: ClassVar[dict] = {"jitter_strengths": PAPER_JITTER}

    def __init__(self, backbone: Backbone, options, spec: RunSpec):
        super().__init__()
        self.backbone, self.options = backbone, options
        self.num_global = spec.views.global_views  # views[:num_global] are the global crops

    @classmethod
    def views(cls, views: ViewSpec) -> ViewSpec:
        """The views this method trains on: the manifest's settings, its own recipe where they are null."""
        return dataclasses.replace(views, **{key: value for key, value in cls.VIEW_RECIPE.items()
                                             if getattr(views, key) is None})

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

    def parameter_groups(self, weight_decay: float) -> list[dict]:
        """Biases and normalisation parameters are not decayed (standard for AdamW in SSL recipes)."""
        trainable = [p for p in self.parameters() if p.requires_grad]
        return [{"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
                {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}]

    def optimizer(self, train: TrainSpec) -> torch.optim.Optimizer:
        """AdamW at the spec's peak lr (the trainer sets each step's lr from the schedule). The LeJEPA paper's
        recipe, and the one the suite holds equal across methods; a method with another recipe overrides
        this. Fused on CUDA: one kernel for all parameters instead of several per parameter tensor."""
        fused = next(self.parameters()).is_cuda
        return torch.optim.AdamW(self.parameter_groups(train.weight_decay), lr=train.lr, fused=fused or None)
