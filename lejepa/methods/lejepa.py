"""LeJEPA (paper Section 5.1, Algorithm 2; docs/lejepa.md section 1): every view predicts the centre of
the global views' projections, plus SIGReg.

By default there is no predictor network, stop-gradient or teacher, and the prediction term is the
squared error averaged over views, samples and embedding dimensions, as in Algorithm 2 (so lambda keeps
its meaning whatever proj_dim is). The paper's optional heuristics are options, all off by default
(docs/lejepa.md section 2): an averaged teacher computing the centre (`teacher`), patch masking of ViT
inputs (`patch_mask_ratio`), an embedding layer before the projector (`embedding_dim`) and a predictor
(`predictor_layers`). "All views global" for non-ViT backbones is `views.local_views: 0`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from lejepa.backbones import create_projector
from lejepa.methods.base import Method, register_method
from lejepa.methods.teacher import KINDS, AveragedCopy
from lejepa.sigreg import SIGReg

MASK_STREAM = 0x6D61736B  # separates the mask draws from any other use of (seed, step)


@dataclass(frozen=True)
class LeJEPAOptions:
    lamb: float = 0.05  # SIGReg weight; the paper recommends 0.05 (Section 6.1)
    num_slices: int = 1024
    knots: int = 17  # on [0, t_max], doubled (docs/sigreg.md section 3)
    t_max: float = 3.0
    # Optional heuristics (docs/lejepa.md section 2), off by default.
    embedding_dim: int | None = None  # linear layer from the backbone to this width before the projector
    predictor_layers: int = 0  # linear layers of a BatchNorm MLP predictor (0: none)
    patch_mask_ratio: float = 0.0  # share of ViT patch tokens dropped from every student view
    teacher: str = "none"  # none | ema | swa: an averaged copy computes the centre
    teacher_momentum: float = 0.996  # ema: start of the cosine schedule (stable-pretraining's default)
    teacher_momentum_end: float = 1.0  # ema: its end

    def __post_init__(self):
        problems = []
        if not 0.0 <= self.lamb <= 1.0:
            problems.append("lamb in [0, 1]")
        if self.num_slices < 1 or self.knots < 2 or self.t_max <= 0:
            problems.append("num_slices >= 1, knots >= 2 and t_max > 0")
        if self.embedding_dim is not None and self.embedding_dim < 1:
            problems.append("embedding_dim >= 1 (or null for none)")
        if self.predictor_layers < 0:
            problems.append("predictor_layers >= 0")
        if not 0.0 <= self.patch_mask_ratio < 1.0:
            problems.append("patch_mask_ratio in [0, 1)")
        if self.teacher not in ("none", *KINDS):
            problems.append(f"teacher one of none, {', '.join(KINDS)}")
        if not (0.0 <= self.teacher_momentum <= 1.0 and 0.0 <= self.teacher_momentum_end <= 1.0):
            problems.append("teacher_momentum and teacher_momentum_end in [0, 1]")
        if problems:
            raise ValueError(f"lejepa options need {'; '.join(problems)}; got {self}")


def mask_generator(seed: int, step: int, rank: int, group: int) -> torch.Generator:
    """The generator of one view group's patch masks: a function of (seed, step, rank, group) only, so a
    resumed run draws the masks the interrupted one would have."""
    state = np.random.SeedSequence([seed, step, rank, group, MASK_STREAM]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


@register_method
class LeJEPA(Method):
    name = "lejepa"
    Options = LeJEPAOptions

    def __init__(self, backbone, options: LeJEPAOptions, spec):
        super().__init__(backbone, options, spec)
        if options.patch_mask_ratio > 0 and not backbone.supports_patch_masking:
            raise ValueError(f"method.patch_mask_ratio needs a ViT backbone (timm VisionTransformer); "
                             f"{spec.model.arch} is not one: set it to 0")
        width = backbone.embed_dim
        self.embedding = None
        if options.embedding_dim is not None:
            self.embedding = nn.Linear(width, options.embedding_dim)
            width = options.embedding_dim
        self.projector = create_projector(spec.model, width)
        self.predictor = None
        if options.predictor_layers:  # mirrors the projector: proj_dim -> proj_hidden ... -> proj_dim
            shape = dataclasses.replace(spec.model, proj_layers=options.predictor_layers)
            self.predictor = create_projector(shape, spec.model.proj_dim)
        self.sigreg = SIGReg(options.num_slices, options.knots, options.t_max, seed=spec.seed)
        self.seed = spec.seed
        self.teacher = None
        if options.teacher != "none":
            self.teacher = AveragedCopy(self.student_modules(), options.teacher, options.teacher_momentum,
                                        options.teacher_momentum_end)

    def student_modules(self) -> dict[str, nn.Module]:
        """What the teacher averages: backbone, embedding layer and projector (not the predictor)."""
        modules = {"backbone": self.backbone, "embedding": self.embedding, "projector": self.projector}
        return {name: module for name, module in modules.items() if module is not None}

    def head(self, features: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            features = self.embedding(features)
        return self.projector(features)

    def student_projections(self, views: list[torch.Tensor], step: int) -> torch.Tensor:
        """(V, B, D) projections of every view; ViT patches masked when patch_mask_ratio > 0."""
        ratio = self.options.patch_mask_ratio
        if ratio == 0:
            return self.embed_views(views, self.head)
        outputs: list[torch.Tensor] = []
        start, group = 0, 0
        while start < len(views):  # views of one size go through the backbone as one batch
            end = start
            while end < len(views) and views[end].shape == views[start].shape:
                end += 1
            generator = mask_generator(self.seed, step, _rank(), group)
            features = self.backbone.forward_masked(torch.cat(views[start:end]), ratio, generator)
            outputs.extend(self.head(features).chunk(end - start))
            start, group = end, group + 1
        return torch.stack(outputs)

    @torch.no_grad()
    def teacher_centre(self, global_views: list[torch.Tensor]) -> torch.Tensor:
        """(B, D) mean of the teacher's projections of the unmasked global views."""
        copies = self.teacher.copies
        features = copies["backbone"](torch.cat(global_views))
        if "embedding" in copies:
            features = copies["embedding"](features)
        return torch.stack(copies["projector"](features).chunk(len(global_views))).mean(0)

    def loss(self, views, step):
        z = self.student_projections(views, step)  # (V, B, D)
        if self.teacher is None:
            centre = z[: self.num_global].mean(0)
        else:
            centre = self.teacher_centre(views[: self.num_global])
        predictions = z
        if self.predictor is not None:
            predictions = self.predictor(z.flatten(0, 1)).view_as(z)
        prediction = (predictions - centre).square().mean()
        regulariser = self.sigreg(z, step)
        lamb = self.options.lamb
        total = (1 - lamb) * prediction + lamb * regulariser
        return total, {"pred": prediction.detach(), "sigreg": regulariser.detach()}

    def on_step_end(self, step: int, total_steps: int) -> None:
        if self.teacher is not None:
            self.teacher.update(self.student_modules(), step, total_steps)

    def evaluation_backbone(self):
        """The teacher's backbone when there is one (stable-pretraining's wrapper forwards through the
        teacher by default; SWA's point is the averaged weights), else the trained backbone."""
        return self.teacher.copies["backbone"] if self.teacher is not None else self.backbone
