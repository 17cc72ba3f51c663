"""LeJEPA (paper, Algorithm 1; DESIGN.md section 3): predict the global-view centre, plus SIGReg.

No predictor network, no stop-gradient, no teacher. The prediction term is the squared error averaged
over views, samples and embedding dimensions, as in the paper's pseudo-code (so lambda keeps its
meaning whatever proj_dim is).
"""

from __future__ import annotations

from dataclasses import dataclass

from lejepa.backbones import create_projector
from lejepa.methods.base import Method
from lejepa.methods.registry import register_method
from lejepa.sigreg import SIGReg


@dataclass(frozen=True)
class LeJEPAOptions:
    lamb: float = 0.05  # SIGReg weight; the paper's range is about 0.01-0.1
    num_slices: int = 1024
    knots: int = 17
    t_max: float = 3.0


@register_method
class LeJEPA(Method):
    name = "lejepa"
    summary = "predict the global-view centre plus SIGReg (paper Algorithm 2)"
    Options = LeJEPAOptions

    def __init__(self, backbone, options: LeJEPAOptions, spec):
        super().__init__(backbone, options, spec)
        self.projector = create_projector(spec.model, backbone.embed_dim)
        self.sigreg = SIGReg(options.num_slices, options.knots, options.t_max, seed=spec.seed)

    def loss(self, views, step):
        z = self.embed_views(views, self.projector)  # (V, B, D)
        centre = z[: self.num_global].mean(0)
        prediction = (z - centre).square().mean()
        regulariser = self.sigreg(z, step)
        lamb = self.options.lamb
        total = (1 - lamb) * prediction + lamb * regulariser
        return total, {"pred": prediction.detach(), "sigreg": regulariser.detach()}
