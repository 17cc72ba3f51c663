"""VICReg (Bardes, Ponce and LeCun, ICLR 2022): variance-invariance-covariance regularisation.

Backbone -> expander MLP (8192-8192-8192 with BatchNorm and ReLU, paper section 4.2) -> z. Three terms:

- invariance s: mean squared error between the embeddings of two views of the same images;
- variance v(Z): per dimension, hinge on the standard deviation, mean_d max(0, gamma - sqrt(Var(z_d) + eps)),
  gamma = 1, eps = 1e-4 (unbiased variance over the batch);
- covariance c(Z): sum of the squared off-diagonal entries of the batch covariance matrix, divided by D.

Weights 25 / 25 / 1 (paper section 4.2). The paper writes the loss with v and c summed over the two
branches, but its reference implementation, which those weights were tuned with, averages v over the two
branches and sums c. We keep the implementation's numbers at two views and extend them to multi-crop
with V views (the first `num_global` of them global) as follows:

- invariance: every view against each global view other than itself, squared error averaged over those
  ordered pairs (with two views: the two orderings of one pair, i.e. the plain two-view MSE);
- variance: v(Z_v) averaged over the V views (two views: the implementation's mean of the two);
- covariance: c(Z_v) averaged over the V views, times 2 (two views: the implementation's sum of the two).

Under DDP the variance and covariance use the embeddings of the whole global batch (gathered with an
autograd-aware all-gather), as the reference implementation does; the invariance term is local.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from lejepa.backbones import create_projector
from lejepa.distributed import world_size
from lejepa.methods.base import Method
from lejepa.methods.registry import register_method
from lejepa.options import Validated, positive, setting

# Bardes et al. 2022, section 4.2 (ImageNet recipe).
INVARIANCE_WEIGHT = 25.0
VARIANCE_WEIGHT = 25.0
COVARIANCE_WEIGHT = 1.0
VARIANCE_TARGET = 1.0  # gamma: the standard deviation each embedding dimension is pushed up to
VARIANCE_EPS = 1e-4  # inside the square root, so a collapsed dimension still has a gradient
EXPANDER_WIDTH = 8192
EXPANDER_LAYERS = 3


@dataclass(frozen=True)
class VICRegOptions(Validated):
    OWNER = "vicreg"
    inv_weight: float = setting(INVARIANCE_WEIGHT, doc="weight of the invariance (MSE) term", low=0)
    var_weight: float = setting(VARIANCE_WEIGHT, doc="weight of the variance hinge", low=0)
    cov_weight: float = setting(COVARIANCE_WEIGHT, doc="weight of the covariance term", low=0)
    var_target: float = positive(VARIANCE_TARGET, "standard deviation each dimension is pushed up to (gamma)")
    var_eps: float = positive(VARIANCE_EPS, "added to the variance inside the square root")
    expander_hidden: int = positive(EXPANDER_WIDTH, "expander hidden width (8192 in the paper)")
    expander_dim: int = setting(EXPANDER_WIDTH, doc="expander output width (>= 2: covariance needs an "
                                                    "off-diagonal)", low=2)
    expander_layers: int = positive(EXPANDER_LAYERS, "linear layers of the expander")


def collapsed_variance_term(options: VICRegOptions) -> float:
    """The variance term of a collapsed embedding, every sample mapped to the same vector: each dimension's
    standard deviation is sqrt(0 + eps), so the hinge is var_target - sqrt(var_eps) in every dimension. The
    variance term exists to keep the embedding away from this point (Bardes et al. 2022, Section 3.1)."""
    return max(0.0, options.var_target - math.sqrt(options.var_eps))


def collapsed_loss(options: VICRegOptions) -> float:
    """The whole loss at collapse: the invariance and covariance terms are 0, so var_weight x the above."""
    return options.var_weight * collapsed_variance_term(options)


def invariance_term(z: torch.Tensor, num_global: int) -> torch.Tensor:
    """Mean squared error of every view (V, N, D) against each global view other than itself."""
    errors = [
        (z[v] - z[g]).square().mean() for g in range(num_global) for v in range(z.shape[0]) if v != g
    ]
    return torch.stack(errors).mean()


def variance_term(z: torch.Tensor, target: float = VARIANCE_TARGET, eps: float = VARIANCE_EPS) -> torch.Tensor:
    """Hinge on each dimension's standard deviation over the batch, for z (..., N, D); mean over D and views."""
    std = torch.sqrt(z.var(dim=-2) + eps)  # unbiased, as in the paper
    return torch.relu(target - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """Squared off-diagonal covariances over the batch divided by D, for z (..., N, D); mean over views."""
    n, d = z.shape[-2], z.shape[-1]
    centred = z - z.mean(dim=-2, keepdim=True)
    cov = centred.transpose(-1, -2) @ centred / (n - 1)
    off_diagonal = cov.square().sum(dim=(-1, -2)) - torch.diagonal(cov, dim1=-2, dim2=-1).square().sum(-1)
    return (off_diagonal / d).mean()


def _gather_batch(z: torch.Tensor) -> torch.Tensor:
    """(V, N, D) -> (V, world * N, D): the global batch, differentiable back to this rank's share."""
    if world_size() == 1:
        return z
    from torch.distributed.nn.functional import all_gather  # out of place: use what it returns

    return torch.cat(all_gather(z.contiguous()), dim=1)


@register_method
class VICReg(Method):
    name = "vicreg"
    summary = "variance-invariance-covariance regularisation (Bardes, Ponce and LeCun 2022)"
    Options = VICRegOptions

    def __init__(self, backbone, options: VICRegOptions, spec):
        super().__init__(backbone, options, spec)
        if self.num_global < 1 or spec.views.global_views + spec.views.local_views < 2:
            raise ValueError(
                f"vicreg compares views: it needs views.global_views >= 1 and at least 2 views in all, got "
                f"{spec.views.global_views} global + {spec.views.local_views} local"
            )
        expander_spec = replace(
            spec.model, proj_hidden=options.expander_hidden, proj_dim=options.expander_dim,
            proj_layers=options.expander_layers,
        )
        self.expander: nn.Module = create_projector(expander_spec, backbone.embed_dim)

    def loss(self, views, step):
        opts = self.options
        z = self.embed_views(views, self.expander)  # (V, N, D)
        # float32 statistics even under bf16 autocast: a 8192 x 8192 covariance needs the precision
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            invariance = invariance_term(z, self.num_global)
            batch = _gather_batch(z)
            variance = variance_term(batch, opts.var_target, opts.var_eps)
            covariance = 2.0 * covariance_term(batch)  # the reference implementation's two-view sum
        total = opts.inv_weight * invariance + opts.var_weight * variance + opts.cov_weight * covariance
        return total, {"inv": invariance.detach(), "var": variance.detach(), "cov": covariance.detach()}
