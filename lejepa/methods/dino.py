"""DINO (Caron et al., ICCV 2021): self-distillation with no labels.

Student = backbone + DINO head; teacher = an exponential moving average (EMA) of the student, never
trained by gradient. The teacher sees the global views only, the student every view. For every pair of
a teacher global view g and a different student view v, the loss is the cross-entropy

    H(P_t, P_s) = - sum_k softmax((t_g - c) / tau_t)_k * log_softmax(s_v / tau_s)_k,

averaged over samples and over those G * (V - 1) pairs. Collapse is avoided by centring (c, an EMA of the
teacher's batch mean) and sharpening (tau_t < tau_s).

Schedules, all a function of (step, total steps) and updated in `on_step_end` after the optimiser step:
- teacher EMA momentum: cosine from 0.996 to 1 over training;
- teacher temperature: linear warm-up 0.04 -> 0.07 over the first 30% of training (30 of 100 epochs);
- the prototype layer is frozen for the first 1% of training (one epoch of 100), which the paper's
  recipe uses to keep early training stable.
The values for the next step live in buffers (as does the centre and the teacher's weights), so a
checkpoint restores them exactly.

Evaluation measures the teacher's backbone, as DINO does (`evaluation_backbone`); `self.backbone`
stays the student so the trainer's optimiser and `embed_views` work on it unchanged. The paper's own
optimiser recipe (weight-decay schedule 0.04 -> 0.4, gradient clipping 3.0) is not applied here: the
benchmark holds the optimiser equal across methods (experiments/baselines*.yaml).
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from lejepa.backbones import Backbone
from lejepa.distributed import average_over_ranks
from lejepa.methods.base import Method
from lejepa.methods.registry import register_method
from lejepa.options import Validated, fraction, positive, setting
from lejepa.schedules import cosine_ramp, linear_ramp

# Caron et al. 2021, section 3.1 and appendix (ViT-S/16 and ResNet-50 recipes).
HEAD_HIDDEN = 2048
HEAD_BOTTLENECK = 256
HEAD_LAYERS = 3
PROTOTYPES = 65536
STUDENT_TEMPERATURE = 0.1
TEACHER_TEMPERATURE = 0.07  # after warm-up
TEACHER_TEMPERATURE_START = 0.04
TEACHER_TEMPERATURE_WARMUP_FRACTION = 0.3  # 30 of 100 epochs
TEACHER_MOMENTUM = 0.996  # start of the cosine schedule to 1
CENTRE_MOMENTUM = 0.9
FREEZE_PROTOTYPES_FRACTION = 0.01  # one epoch of 100


@dataclass(frozen=True)
class DINOOptions(Validated):
    OWNER = "dino"
    out_dim: int = setting(PROTOTYPES, doc="prototypes (65536 in the paper; shrink for CPU runs)", low=2)
    hidden_dim: int = positive(HEAD_HIDDEN, "hidden width of the DINO head")
    bottleneck_dim: int = positive(HEAD_BOTTLENECK, "bottleneck width before the prototypes")
    head_layers: int = positive(HEAD_LAYERS, "linear layers of the head before the prototypes")
    head_batchnorm: bool = setting(False, doc="BatchNorm after each hidden layer of the head (DINO's "
                                             "use_bn_in_head, off by default there too)")
    student_temp: float = positive(STUDENT_TEMPERATURE, "student softmax temperature")
    teacher_temp: float = positive(TEACHER_TEMPERATURE, "teacher temperature after warm-up")
    teacher_temp_start: float = positive(TEACHER_TEMPERATURE_START, "teacher temperature at step 0")
    teacher_temp_warmup_fraction: float = fraction(TEACHER_TEMPERATURE_WARMUP_FRACTION,
                                                   "fraction of training over which the teacher temperature rises")
    teacher_momentum: float = fraction(TEACHER_MOMENTUM, "teacher EMA momentum at step 0 (cosine to 1)")
    centre_momentum: float = fraction(CENTRE_MOMENTUM, "momentum of the teacher-output centre")
    freeze_prototypes_fraction: float = fraction(FREEZE_PROTOTYPES_FRACTION,
                                                 "fraction of training with the prototypes frozen")


def uniform_output_loss(options: DINOOptions) -> float:
    """The loss of a student whose outputs are uniform over the K prototypes: H(P_t, 1/K) = ln K whatever
    the teacher's targets. It is the value of the collapse to uniform outputs that centring alone drives
    towards (Caron et al. 2021, Section 5.3 and Fig. 7): a run whose loss stays at ln K has learnt nothing
    its head can express."""
    return math.log(options.out_dim)


def teacher_temperature(step: int, total_steps: int, options: DINOOptions) -> float:
    """Linear warm-up from teacher_temp_start at step 0 to teacher_temp, then constant."""
    warmup_steps = options.teacher_temp_warmup_fraction * total_steps
    return linear_ramp(step, warmup_steps, options.teacher_temp_start, options.teacher_temp)


def teacher_momentum(step: int, total_steps: int, base: float = TEACHER_MOMENTUM) -> float:
    """Cosine schedule: `base` at step 0, rising to 1 at the end of training."""
    return cosine_ramp(step, total_steps, base, 1.0)


def prototypes_frozen(step: int, total_steps: int, options: DINOOptions) -> bool:
    return step < options.freeze_prototypes_fraction * total_steps


class DINOHead(nn.Module):
    """MLP with GELU (BatchNorm after the hidden layers only with `batchnorm`, DINO's use_bn_in_head), an
    L2-normalised bottleneck, then a weight-normalised linear layer (each prototype a unit vector, the norm
    fixed at 1) giving one logit per prototype."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, bottleneck_dim: int, layers: int,
                 batchnorm: bool = False):
        super().__init__()
        widths = [in_dim] + [hidden_dim] * (layers - 1) + [bottleneck_dim]
        modules: list[nn.Module] = []
        for i, (width_in, width_out) in enumerate(itertools.pairwise(widths)):
            linear = nn.Linear(width_in, width_out)
            nn.init.trunc_normal_(linear.weight, std=0.02)  # the DINO head's initialisation
            nn.init.zeros_(linear.bias)
            modules.append(linear)
            if i < layers - 1:
                modules += [nn.BatchNorm1d(width_out), nn.GELU()] if batchnorm else [nn.GELU()]
        self.mlp = nn.Sequential(*modules)
        self.prototypes = nn.Linear(bottleneck_dim, out_dim, bias=False)  # default init, normalised below

    def forward(self, x: torch.Tensor, freeze_prototypes: bool = False) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1)
        weight = self.prototypes.weight
        if freeze_prototypes:
            # A zero gradient rather than none: DDP expects every trainable parameter in the graph. AdamW's
            # weight decay then only rescales each row, which the normalisation undoes: the layer is frozen.
            weight = weight.detach() + 0.0 * weight
        return x @ F.normalize(weight, dim=-1).T


@register_method
class DINO(Method):
    name = "dino"
    summary = "self-distillation with an EMA teacher, centring and sharpening (Caron et al. 2021)"
    Options = DINOOptions

    def __init__(self, backbone: Backbone, options: DINOOptions, spec):
        super().__init__(backbone, options, spec)
        if self.num_global < 1 or spec.views.global_views + spec.views.local_views < 2:
            raise ValueError(
                f"dino distils between views: it needs views.global_views >= 1 and at least 2 views in all, "
                f"got {spec.views.global_views} global + {spec.views.local_views} local"
            )
        self.head = DINOHead(
            backbone.embed_dim, options.out_dim, options.hidden_dim, options.bottleneck_dim, options.head_layers,
            options.head_batchnorm,
        )
        # The teacher starts as an exact copy of the student and only ever moves by EMA: no gradient, and
        # requires_grad False keeps it out of the trainer's optimiser.
        self.teacher_backbone = copy.deepcopy(backbone)
        self.teacher_head = copy.deepcopy(self.head)
        for parameter in self.teacher_parameters():
            parameter.requires_grad_(False)
        self.register_buffer("centre", torch.zeros(options.out_dim))
        # Schedule values for the coming step (step 0 here); on_step_end writes the next step's.
        self.register_buffer("teacher_temp", torch.tensor(teacher_temperature(0, 1, options)))
        self.register_buffer("prototypes_frozen", torch.tensor(prototypes_frozen(0, 1, options)))
        self._batch_centre: torch.Tensor | None = None

    def student_parameters(self) -> list[nn.Parameter]:
        return [*self.backbone.parameters(), *self.head.parameters()]

    def teacher_parameters(self) -> list[nn.Parameter]:
        return [*self.teacher_backbone.parameters(), *self.teacher_head.parameters()]

    def evaluation_backbone(self) -> Backbone:
        return self.teacher_backbone

    def loss(self, views, step):
        opts, num_global = self.options, self.num_global
        student_head = partial(self.head, freeze_prototypes=bool(self.prototypes_frozen))
        student = self.embed_views(views, student_head)  # (V, B, K)
        with torch.no_grad():  # global views share one size, so they go through the teacher as one batch
            teacher = self.teacher_head(self.teacher_backbone(torch.cat(views[:num_global])))
            teacher = torch.stack(teacher.chunk(num_global))  # (G, B, K)
        # Softmax over 65536 prototypes in float32 even under bf16 autocast.
        with torch.autocast(student.device.type, enabled=False):
            teacher = teacher.float()
            targets = torch.softmax((teacher - self.centre) / self.teacher_temp, dim=-1)
            log_probs = torch.log_softmax(student.float() / opts.student_temp, dim=-1)
            cross_entropy = -torch.einsum("gbk,vbk->gvb", targets, log_probs).mean(-1)  # (G, V)
            views_differ = ~torch.eye(num_global, len(views), dtype=torch.bool, device=student.device)
            loss = cross_entropy[views_differ].mean()
            entropy = -(targets * torch.log(targets.clamp_min(1e-12))).sum(-1).mean()
        self._batch_centre = teacher.mean(dim=(0, 1))  # applied in on_step_end, after the step
        return loss, {"teacher_temp": self.teacher_temp.detach().clone(), "teacher_entropy": entropy.detach()}

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int) -> None:
        opts = self.options
        momentum = teacher_momentum(step, total_steps, opts.teacher_momentum)
        teacher, student = self.teacher_parameters(), self.student_parameters()
        if teacher:  # the teacher is a deep copy of the student, so the two lists pair up in order
            torch._foreach_mul_(teacher, momentum)
            torch._foreach_add_(teacher, student, alpha=1.0 - momentum)
        if self._batch_centre is not None:
            batch_centre = average_over_ranks(self._batch_centre)
            self.centre.mul_(opts.centre_momentum).add_(batch_centre, alpha=1.0 - opts.centre_momentum)
            self._batch_centre = None
        self.teacher_temp.fill_(teacher_temperature(step + 1, total_steps, opts))
        self.prototypes_frozen.fill_(prototypes_frozen(step + 1, total_steps, opts))
