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

import torch
from torch import nn

from lejepa.backbones import create_projector
from lejepa.distributed import rank
from lejepa.methods.base import Method
from lejepa.methods.registry import register_method
from lejepa.methods.teacher import KINDS, AveragedCopy
from lejepa.options import Validated, fraction, positive, setting
from lejepa.seeds import stream_generator
from lejepa.sigreg import SIGReg

MASK_STREAM = 0x6D61736B  # separates the mask draws from any other use of (seed, step)


@dataclass(frozen=True)
class LeJEPAOptions(Validated):
    OWNER = "lejepa"
    lamb: float = fraction(0.05, "SIGReg weight lambda; the paper recommends 0.05 (Section 6.1)")
    num_slices: int = positive(1024, "random directions SIGReg tests per step")
    knots: int = setting(17, doc="quadrature knots on [0, t_max], doubled (docs/sigreg.md section 3)", low=2)
    t_max: float = positive(3.0, "upper end of the Epps-Pulley integral")
    # Optional heuristics (docs/lejepa.md section 2), off by default.
    embedding_dim: int | None = positive(None, "linear layer from the backbone to this width before the projector")
    predictor_layers: int = setting(0, doc="linear layers of a BatchNorm MLP predictor (0: none)", low=0)
    patch_mask_ratio: float = setting(0.0, doc="share of ViT patch tokens dropped from every student view",
                                      low=0, high=1, high_open=True)
    teacher: str = setting("none", doc="an averaged copy computes the centre", choices=("none", *KINDS))
    teacher_momentum: float = fraction(0.996, "ema: start of the cosine schedule (stable-pretraining's default)")
    teacher_momentum_end: float = fraction(1.0, "ema: its end")


def mask_generator(seed: int, step: int, rank: int, group: int) -> torch.Generator:
    """The generator of one view group's patch masks: a function of (seed, step, rank, group) only, so a
    resumed run draws the masks the interrupted one would have."""
    return stream_generator(seed, step, rank, group, MASK_STREAM)


@register_method
class LeJEPA(Method):
    name = "lejepa"
    summary = "predict the global-view centre plus SIGReg (paper Algorithm 2)"
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
            generator = mask_generator(self.seed, step, rank(), group)
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
