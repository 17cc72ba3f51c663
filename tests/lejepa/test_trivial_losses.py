"""Each method's trivial value, by hand and through the method's own loss: DINO at uniform student outputs is
ln K, VICReg on a collapsed embedding is its variance hinge at std sqrt(eps), LeJEPA on an embedding collapsed
to the origin is lambda x the closed-form SIGReg (evaluation/health.py), on the suite's quadrature.

As in test_methods.py, the backbone and heads are identities, so a "view" is its embedding (N x D)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from evaluation.health import collapsed_sigreg, trivial_value
from lejepa.backbones import Backbone
from lejepa.methods import parse_options
from lejepa.methods.dino import uniform_output_loss
from lejepa.methods.vicreg import collapsed_loss, collapsed_variance_term
from lejepa.sigreg import random_directions, sigreg
from lejepa.spec import ModelSpec, RunSpec, TrainSpec, ViewSpec


class _Identity(nn.Identity):
    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim


class _Head(nn.Module):
    """Identity, or zeros (every prototype's logit equal: a uniform softmax); takes DINO's freeze flag."""

    def __init__(self, zeros: bool = False):
        super().__init__()
        self.zeros = zeros

    def forward(self, x: torch.Tensor, freeze_prototypes: bool = False) -> torch.Tensor:
        return torch.zeros_like(x) if self.zeros else x


def _spec(method: dict, batch_size: int = 8, local_views: int = 0) -> RunSpec:
    return RunSpec(experiment="trivial", method=method, model=ModelSpec(proj_hidden=8, proj_layers=2, proj_dim=4),
                   views=ViewSpec(global_views=2, local_views=local_views), train=TrainSpec(batch_size=batch_size))


def _method(method: dict, dim: int, batch_size: int = 8, local_views: int = 0):
    cls, options = parse_options(method)
    spec = _spec(method, batch_size, local_views)
    built = cls(Backbone(_Identity(dim)), options, spec)
    for head in ("projector", "expander", "head", "teacher_head"):
        if hasattr(built, head):
            setattr(built, head, _Head())
    if hasattr(built, "teacher_backbone"):
        built.teacher_backbone = Backbone(_Identity(dim))
    return built, spec


def test_dino_at_uniform_student_outputs_is_ln_k_whatever_the_teacher():
    method, spec = _method({"name": "dino", "out_dim": 8, "hidden_dim": 4, "bottleneck_dim": 8}, dim=8, local_views=2)
    method.head = _Head(zeros=True)  # the student: equal logits for all 8 prototypes
    views = [torch.randn(5, 8, generator=torch.Generator().manual_seed(v)) * 3 for v in range(4)]  # teacher: peaked
    loss, parts = method.loss(views, step=0)
    assert parts["teacher_entropy"].item() < math.log(8) - 0.5  # the targets are far from uniform
    assert loss.item() == pytest.approx(math.log(8), rel=1e-6)
    assert uniform_output_loss(method.options) == pytest.approx(2.0794415, rel=1e-7)  # ln 8 by hand
    assert trivial_value(spec)[:2] == ("loss", pytest.approx(math.log(8)))  # DINO: the whole loss
    assert uniform_output_loss(parse_options({"name": "dino", "out_dim": 1024})[1]) == pytest.approx(6.9314718)


def test_vicreg_on_a_collapsed_embedding_is_its_variance_hinge():
    method, spec = _method({"name": "vicreg", "expander_hidden": 4, "expander_dim": 3}, dim=3, local_views=1)
    same = torch.tensor([[0.3, -1.0, 2.0]]).expand(6, 3)  # every sample, every view: one point
    loss, parts = method.loss([same, same, same], step=0)
    # invariance 0, covariance 0; each dimension's std is sqrt(0 + 1e-4) = 0.01, hinge 1 - 0.01 = 0.99.
    assert parts["inv"].item() == 0 and parts["cov"].item() == 0
    assert parts["var"].item() == pytest.approx(0.99, rel=1e-6)
    assert loss.item() == pytest.approx(25 * 0.99, rel=1e-6)
    assert collapsed_variance_term(method.options) == pytest.approx(0.99)
    assert collapsed_loss(method.options) == pytest.approx(24.75)
    assert trivial_value(spec)[:2] == ("var", pytest.approx(0.99))  # the term the health check compares
    custom = parse_options({"name": "vicreg", "var_weight": 10.0, "var_target": 2.0, "var_eps": 0.01})[1]
    assert collapsed_loss(custom) == pytest.approx(10 * (2 - 0.1))


def test_collapsed_sigreg_closed_form_by_hand_and_against_sigreg():
    # 3 knots on [0, 2]: t = 0, 1, 2, dt = 1, doubled trapezoid weights (1, 2, 1) times exp(-t^2/2).
    # N equal samples at 0: ecf = 1 at every t, so T = N sum_j w_j (1 - exp(-t_j^2/2))^2; the t = 0 term is 0.
    by_hand = 5 * (2 * math.exp(-0.5) * (1 - math.exp(-0.5)) ** 2 + math.exp(-2) * (1 - math.exp(-2)) ** 2)
    assert collapsed_sigreg(5, t_max=2.0, knots=3) == pytest.approx(by_hand, rel=1e-12)
    zeros = torch.zeros(5, 4, dtype=torch.float64)
    directions = random_directions(4, 16, seed=0, step=0).double()
    assert sigreg(zeros, directions, t_max=2.0, knots=3).item() == pytest.approx(by_hand, rel=1e-9)
    # The suite's defaults (17 knots on [0, 3]): about 0.402 N, the integral's 0.409 N up to the quadrature.
    for n in (1, 96, 256):
        assert sigreg(torch.zeros(n, 4, dtype=torch.float64), directions).item() == pytest.approx(
            collapsed_sigreg(n), rel=1e-9)
    assert collapsed_sigreg(1) == pytest.approx(0.40205, abs=1e-5)
    # Collapse anywhere else costs more: the origin is the collapsed embedding with the least SIGReg.
    elsewhere = torch.full((5, 4), 0.7, dtype=torch.float64)
    assert sigreg(elsewhere, directions, t_max=2.0, knots=3).item() > by_hand


def test_lejepa_on_a_collapsed_embedding_is_lambda_times_collapsed_sigreg():
    method, spec = _method({"name": "lejepa", "lamb": 0.05, "num_slices": 16}, dim=4, batch_size=6, local_views=1)
    zeros = torch.zeros(6, 4)
    loss, parts = method.loss([zeros, zeros, zeros], step=3)
    assert parts["pred"].item() == 0
    assert parts["sigreg"].item() == pytest.approx(collapsed_sigreg(6), rel=1e-6)
    assert loss.item() == pytest.approx(0.05 * collapsed_sigreg(6), rel=1e-6)
    term, value, how = trivial_value(spec)
    assert (term, value) == ("sigreg", pytest.approx(parts["sigreg"].item(), rel=1e-6)) and "lambda" in how
