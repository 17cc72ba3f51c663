"""Method losses against values worked out by hand, DINO's schedules step by step, and a tiny pretrain of
each method whose checkpoint resume is exact.

Hand-value tests swap the backbone and head for identities, so a "view" is its embedding (N x D) and the
expected numbers follow from the formulas in each method's docstring with a few lines of arithmetic.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from lejepa.backbones import Backbone
from lejepa.checkpoint import load_latest_checkpoint
from lejepa.methods import get_method, parse_options
from lejepa.methods.dino import DINO, DINOOptions, teacher_momentum, teacher_temperature
from lejepa.methods.vicreg import VICReg
from lejepa.sigreg import random_directions, sigreg
from lejepa.spec import DataSpec, ModelSpec, RunSpec, TrainSpec, ViewSpec
from lejepa.train import pretrain


class _Identity(nn.Identity):
    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim


class _Linear(nn.Linear):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__(dim_in, dim_out)
        self.num_features = dim_out


class _IdentityHead(nn.Module):
    """An identity that accepts the DINO head's freeze flag."""

    def forward(self, x: torch.Tensor, freeze_prototypes: bool = False) -> torch.Tensor:
        return x


def _spec(method: dict, global_views: int = 2, local_views: int = 0, seed: int = 0) -> RunSpec:
    return RunSpec(
        experiment="test_methods", seed=seed, method=method,
        model=ModelSpec(proj_hidden=8, proj_layers=2, proj_dim=4),
        views=ViewSpec(global_views=global_views, local_views=local_views),
    )


def _identity_method(method: dict, dim: int, global_views: int = 2, local_views: int = 0):
    """The method with identity backbone and heads: views are embeddings."""
    cls, options = parse_options(method)
    built = cls(Backbone(_Identity(dim)), options, _spec(method, global_views, local_views))
    for head in ("projector", "expander", "head", "teacher_head"):
        if hasattr(built, head):
            setattr(built, head, _IdentityHead())
    if hasattr(built, "teacher_backbone"):
        built.teacher_backbone = Backbone(_Identity(dim))
    return built


def _t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------- LeJEPA


def test_lejepa_prediction_term_by_hand_and_total_mixes_with_lambda():
    lamb = 0.05
    method = _identity_method({"name": "lejepa", "lamb": lamb, "num_slices": 16}, dim=2, local_views=1)
    g1, g2, local = _t([[1, 0], [3, 2]]), _t([[3, 2], [1, 0]]), _t([[2, 1], [2, 4]])
    total, parts = method.loss([g1, g2, local], step=7)
    # Centre = mean of the two global views = [[2, 1], [2, 1]] (the local view is not in it).
    # Squared errors: g1 -> 1+1+1+1, g2 -> 1+1+1+1, local -> 0+0+0+9; 12 entries in all.
    assert parts["pred"].item() == pytest.approx((4 + 4 + 9) / 12)
    z = torch.stack([g1, g2, local])
    expected_sigreg = sigreg(z, random_directions(2, 16, seed=0, step=7))
    assert parts["sigreg"].item() == pytest.approx(expected_sigreg.item(), rel=1e-6)
    assert total.item() == pytest.approx((1 - lamb) * 17 / 12 + lamb * expected_sigreg.item(), rel=1e-6)


def test_lejepa_lambda_one_half_weights_both_terms_equally():
    method = _identity_method({"name": "lejepa", "lamb": 0.5, "num_slices": 16}, dim=2)
    total, parts = method.loss([_t([[1, 0], [3, 2]]), _t([[3, 2], [1, 0]])], step=0)
    assert parts["pred"].item() == pytest.approx(1.0)  # every entry is 1 away from the centre
    assert total.item() == pytest.approx(0.5 * 1.0 + 0.5 * parts["sigreg"].item(), rel=1e-6)


# ---------------------------------------------------------------------------------------------- VICReg

# Two views of 3 samples in 2 dimensions.
Z_A = [[0.0, 0.0], [0.5, 1.0], [1.0, 2.0]]  # variances 0.25 and 1, covariance 0.5
Z_B = [[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]  # variances 1/3 and 0, covariance 0
EPS = 1e-4


def test_vicreg_three_terms_by_hand_two_views():
    method = _identity_method({"name": "vicreg", "expander_hidden": 4, "expander_dim": 2}, dim=2)
    total, parts = method.loss([_t(Z_A), _t(Z_B)], step=0)
    # Invariance: differences [-1, 0], [0.5, 1], [0, 2] -> squares 1 + 0 + 0.25 + 1 + 0 + 4 over 6 entries.
    invariance = 6.25 / 6
    # Variance (unbiased): Z_A has std sqrt(0.25 + eps), sqrt(1 + eps) -> hinge (1 - 0.50010, 0);
    # Z_B has std sqrt(1/3 + eps), sqrt(0 + eps) = 0.01 -> hinge (1 - 0.57744, 0.99). Mean over dims and views.
    v_a = (1 - math.sqrt(0.25 + EPS) + 0.0) / 2
    v_b = (1 - math.sqrt(1 / 3 + EPS) + (1 - math.sqrt(EPS))) / 2
    variance = (v_a + v_b) / 2
    # Covariance: Z_A's off-diagonal 0.5 appears twice: (0.25 + 0.25) / D=2 = 0.25; Z_B's is 0.
    # Summed over the two views (the reference implementation's convention).
    covariance = 0.25 + 0.0
    assert parts["inv"].item() == pytest.approx(invariance, rel=1e-6)
    assert parts["var"].item() == pytest.approx(variance, rel=1e-5)
    assert parts["cov"].item() == pytest.approx(covariance, rel=1e-6)
    assert total.item() == pytest.approx(25 * invariance + 25 * variance + 1 * covariance, rel=1e-5)


def test_vicreg_multicrop_pairs_every_view_with_each_other_global_view():
    method = _identity_method({"name": "vicreg", "expander_hidden": 4, "expander_dim": 2}, dim=2, local_views=1)
    local = [[0.0, 0.0]] * 3
    _, parts = method.loss([_t(Z_A), _t(Z_B), _t(local)], step=0)
    # Ordered pairs (view, global view), view != global: (B, A), (local, A), (A, B), (local, B).
    mse_ab = 6.25 / 6
    mse_local_a = (0 + 0 + 0.25 + 1 + 1 + 4) / 6  # local is zero: the mean of Z_A squared
    mse_local_b = (1 + 0 + 0 + 0 + 1 + 0) / 6
    assert parts["inv"].item() == pytest.approx((2 * mse_ab + mse_local_a + mse_local_b) / 4, rel=1e-6)
    # The constant local view has std 0.01 in both dims; variance is averaged over the three views.
    v_a = (1 - math.sqrt(0.25 + EPS)) / 2
    v_b = (1 - math.sqrt(1 / 3 + EPS) + 1 - math.sqrt(EPS)) / 2
    v_local = 1 - math.sqrt(EPS)
    assert parts["var"].item() == pytest.approx((v_a + v_b + v_local) / 3, rel=1e-5)
    # Covariance: per-view mean (0.25 + 0 + 0) / 3, times 2.
    assert parts["cov"].item() == pytest.approx(2 * 0.25 / 3, rel=1e-6)


def test_vicreg_defaults_are_the_papers():
    options = get_method("vicreg").Options()
    assert (options.inv_weight, options.var_weight, options.cov_weight) == (25.0, 25.0, 1.0)
    assert (options.var_target, options.var_eps) == (1.0, 1e-4)
    assert (options.expander_hidden, options.expander_dim, options.expander_layers) == (8192, 8192, 3)
    with pytest.raises(ValueError, match="expander_dim: must be >= 2"):
        get_method("vicreg").Options(expander_dim=1)


def test_vicreg_expander_has_the_requested_widths():
    options = get_method("vicreg").Options(expander_hidden=12, expander_dim=10, expander_layers=3)
    method = VICReg(Backbone(_Identity(6)), options, _spec({"name": "vicreg"}))
    widths = [(m.in_features, m.out_features) for m in method.expander.modules() if isinstance(m, nn.Linear)]
    assert widths == [(6, 12), (12, 12), (12, 10)]


# ------------------------------------------------------------------------------------------------ DINO

TEACHER_START, STUDENT_TEMP = 0.04, 0.1


def test_dino_cross_entropy_by_hand():
    method = _identity_method({"name": "dino", "out_dim": 2, "hidden_dim": 4, "bottleneck_dim": 2}, dim=2,
                              local_views=1)
    a = [0.0, TEACHER_START * math.log(3)]  # teacher: softmax([0, ln 3]) = [1/4, 3/4]
    b = [STUDENT_TEMP * math.log(4), 0.0]  # student: softmax([ln 4, 0]) = [4/5, 1/5]
    c = [0.0, 0.0]  # local view, student only: [1/2, 1/2]
    loss, parts = method.loss([_t([a]), _t([b]), _t([c])], step=0)
    assert parts["teacher_temp"].item() == pytest.approx(TEACHER_START)
    teacher_a = [1 / 4, 3 / 4]
    teacher_b = [32 / 33, 1 / 33]  # softmax([2.5 ln 4, 0]) = [4^2.5, 1] / (4^2.5 + 1)
    student_a = [1 / (1 + 3**0.4), 3**0.4 / (1 + 3**0.4)]  # softmax([0, 0.4 ln 3])
    student_b = [4 / 5, 1 / 5]
    h_a_b = -(teacher_a[0] * math.log(student_b[0]) + teacher_a[1] * math.log(student_b[1]))
    h_b_a = -(teacher_b[0] * math.log(student_a[0]) + teacher_b[1] * math.log(student_a[1]))
    h_to_local = math.log(2)  # any teacher distribution against a uniform student
    # Pairs (teacher g, student v != g): (a, b), (a, local), (b, a), (b, local).
    assert loss.item() == pytest.approx((h_a_b + h_to_local + h_b_a + h_to_local) / 4, rel=1e-5)
    entropy_a = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    entropy_b = -(32 / 33 * math.log(32 / 33) + 1 / 33 * math.log(1 / 33))
    assert parts["teacher_entropy"].item() == pytest.approx((entropy_a + entropy_b) / 2, rel=1e-5)


def test_dino_teacher_targets_are_centred():
    method = _identity_method({"name": "dino", "out_dim": 2, "hidden_dim": 4, "bottleneck_dim": 2}, dim=2)
    a = [0.0, TEACHER_START * math.log(3)]
    b = [STUDENT_TEMP * math.log(4), 0.0]
    method.centre.copy_(_t(a))  # subtracting a's logits makes its target uniform
    loss, _ = method.loss([_t([a]), _t([b])], step=0)
    teacher_b = [32 / (32 + 1 / 3), (1 / 3) / (32 + 1 / 3)]  # softmax([2.5 ln 4, -ln 3])
    student_a = [1 / (1 + 3**0.4), 3**0.4 / (1 + 3**0.4)]
    h_a_b = -(0.5 * math.log(4 / 5) + 0.5 * math.log(1 / 5))
    h_b_a = -(teacher_b[0] * math.log(student_a[0]) + teacher_b[1] * math.log(student_a[1]))
    assert loss.item() == pytest.approx((h_a_b + h_b_a) / 2, rel=1e-5)


def test_dino_centre_update_step_by_step():
    method = _identity_method({"name": "dino", "out_dim": 2, "hidden_dim": 4, "bottleneck_dim": 2}, dim=2,
                              local_views=1)
    local = _t([[100.0, -100.0], [50.0, 50.0]])  # student only: must not move the centre
    method.loss([_t([[1, 2], [3, 4]]), _t([[5, 6], [7, 8]]), local], step=0)
    assert method.centre.tolist() == [0.0, 0.0]  # applied after the optimiser step, not in the loss
    method.on_step_end(0, 10)
    # Batch centre = mean of the 4 teacher rows = [4, 5]; centre = 0.9 * 0 + 0.1 * [4, 5].
    assert method.centre.tolist() == pytest.approx([0.4, 0.5])
    method.loss([_t([[0, 0], [2, 2]]), _t([[4, 0], [2, 6]]), local], step=1)
    method.on_step_end(1, 10)
    # Batch centre [2, 2]; centre = 0.9 * [0.4, 0.5] + 0.1 * [2, 2] = [0.56, 0.65].
    assert method.centre.tolist() == pytest.approx([0.56, 0.65])


def test_dino_teacher_temperature_warmup_values():
    options = DINOOptions()  # 0.04 -> 0.07 over the first 30% of training
    assert [teacher_temperature(s, 100, options) for s in (0, 10, 15, 30, 99)] == pytest.approx(
        [0.04, 0.05, 0.055, 0.07, 0.07]
    )
    assert teacher_temperature(0, 100, DINOOptions(teacher_temp_warmup_fraction=0.0)) == 0.07
    method = _tiny_dino()
    assert method.teacher_temp.item() == pytest.approx(0.04)  # step 0
    method.on_step_end(14, 100)  # sets step 15's temperature
    assert method.teacher_temp.item() == pytest.approx(0.055)
    _, parts = method.loss([torch.randn(4, 3), torch.randn(4, 3)], step=15)
    assert parts["teacher_temp"].item() == pytest.approx(0.055)


def _tiny_dino(**options) -> DINO:
    opts = DINOOptions(out_dim=5, hidden_dim=6, bottleneck_dim=3, head_layers=2, **options)
    return DINO(Backbone(_Linear(3, 4)), opts, _spec({"name": "dino"}))


def test_dino_ema_update_step_by_step():
    method = _tiny_dino()
    start = [p.detach().clone() for p in method.teacher_parameters()]
    for student, teacher in zip(method.student_parameters(), start):
        assert torch.equal(student, teacher)  # the teacher starts as the student
    with torch.no_grad():
        for p in method.student_parameters():
            p.add_(1.0)  # stands in for an optimiser step
    method.on_step_end(0, 10)  # momentum 0.996 at step 0
    for teacher, init in zip(method.teacher_parameters(), start):
        torch.testing.assert_close(teacher, 0.996 * init + 0.004 * (init + 1))
    with torch.no_grad():
        for p in method.student_parameters():
            p.add_(1.0)  # student = init + 2
    method.on_step_end(5, 10)  # halfway: cos(pi/2) = 0, momentum 1 - 0.004 / 2 = 0.998
    for teacher, init in zip(method.teacher_parameters(), start):
        torch.testing.assert_close(teacher, 0.998 * (init + 0.004) + 0.002 * (init + 2))
    assert teacher_momentum(5, 10) == pytest.approx(0.998)
    assert teacher_momentum(10, 10) == 1.0


def test_dino_teacher_gets_no_gradient_and_is_not_optimised():
    method = _tiny_dino(freeze_prototypes_fraction=0.0)
    loss, _ = method.loss([torch.randn(4, 3), torch.randn(4, 3)], step=0)
    loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in method.teacher_parameters())
    assert all(p.grad is not None for p in method.student_parameters())
    assert any(p.grad.abs().sum() > 0 for p in method.student_parameters())
    optimised = {id(p) for group in method.parameter_groups(0.05) for p in group["params"]}
    assert not optimised & {id(p) for p in method.teacher_parameters()}
    assert {id(p) for p in method.student_parameters()} <= optimised
    assert method.evaluation_backbone() is method.teacher_backbone


def test_dino_prototypes_frozen_for_the_first_steps():
    method = _tiny_dino()  # frozen for the first 1%: steps 0..9 of 1000
    assert bool(method.prototypes_frozen)
    views = [torch.randn(4, 3), torch.randn(4, 3)]
    method.loss(views, step=0)[0].backward()
    assert method.head.prototypes.weight.grad.abs().sum() == 0
    assert method.head.mlp[0].weight.grad.abs().sum() > 0
    method.on_step_end(9, 1000)  # step 10 is the first trained one
    assert not bool(method.prototypes_frozen)
    method.zero_grad()
    method.loss(views, step=10)[0].backward()
    assert method.head.prototypes.weight.grad.abs().sum() > 0


def test_evaluation_backbone_defaults_to_the_trained_one():
    method = _identity_method({"name": "lejepa"}, dim=2)
    assert method.evaluation_backbone() is method.backbone


# ---------------------------------------------------------------------------- two processes (gloo)


def _distributed_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        z = torch.randn(2, 8, 3)  # two views of the global batch of 8
        shard = z[:, rank * 4 : (rank + 1) * 4].clone().requires_grad_(True)
        vicreg = _identity_method({"name": "vicreg", "expander_hidden": 4, "expander_dim": 3}, dim=3)
        loss, parts = vicreg.loss(list(shard), step=0)
        loss.backward()
        dino = _identity_method({"name": "dino", "out_dim": 3, "hidden_dim": 4, "bottleneck_dim": 3}, dim=3)
        dino.loss(list(z[:, rank * 4 : (rank + 1) * 4]), step=0)
        dino.on_step_end(0, 10)
        torch.save({"loss": loss.detach(), "parts": parts, "grad": shard.grad, "centre": dino.centre.clone()},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_whole_batch(tmp_path: Path):
    """VICReg's variance/covariance use the global batch (gradients included, after DDP's averaging) and
    DINO's centre is the global batch mean: two gloo ranks with half the batch each match one process."""
    mp.spawn(_distributed_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    torch.manual_seed(0)
    z = torch.randn(2, 8, 3).requires_grad_(True)
    vicreg = _identity_method({"name": "vicreg", "expander_hidden": 4, "expander_dim": 3}, dim=3)
    loss, parts = vicreg.loss(list(z), step=0)
    loss.backward()
    for key in ("var", "cov"):
        for r in ranks:
            torch.testing.assert_close(r["parts"][key], parts[key])
    # Invariance is local; DDP averages over ranks, which with equal shards is the whole-batch mean.
    torch.testing.assert_close((ranks[0]["parts"]["inv"] + ranks[1]["parts"]["inv"]) / 2, parts["inv"])
    torch.testing.assert_close((ranks[0]["loss"] + ranks[1]["loss"]) / 2, loss.detach())
    # DDP divides each rank's gradient by the world size.
    torch.testing.assert_close(torch.cat([r["grad"] / 2 for r in ranks], dim=1), z.grad)
    dino = _identity_method({"name": "dino", "out_dim": 3, "hidden_dim": 4, "bottleneck_dim": 3}, dim=3)
    dino.loss(list(z.detach()), step=0)
    dino.on_step_end(0, 10)
    for r in ranks:
        torch.testing.assert_close(r["centre"], dino.centre)


# ------------------------------------------------------------------------------- tiny end-to-end runs

TINY_METHODS = [
    {"name": "lejepa", "num_slices": 32},
    {"name": "vicreg", "expander_hidden": 32, "expander_dim": 32},
    {"name": "dino", "out_dim": 64, "hidden_dim": 32, "bottleneck_dim": 16},
]


@pytest.mark.slow
@pytest.mark.parametrize("method", TINY_METHODS, ids=[m["name"] for m in TINY_METHODS])
def test_tiny_pretrain_runs_and_resumes_exactly(method: dict, tmp_path: Path):
    spec = RunSpec(
        experiment="test_methods", method=method, data=DataSpec(name="digits"),
        model=ModelSpec(arch="resnet18", proj_hidden=32, proj_dim=16, timm_kwargs={"channels": [8, 16, 32, 64]}),
        views=ViewSpec(global_views=2, local_views=2),
        train=TrainSpec(epochs=1, max_steps=3, batch_size=32, checkpoint_every=1, log_every=1),
    )
    trained, result = pretrain(spec, tmp_path, progress=False)
    assert result.status == "done" and result.steps == 3
    assert math.isfinite(result.final_loss) and result.final_parts
    uninterrupted = load_latest_checkpoint(tmp_path / "ckpt", spec.run_id)
    assert uninterrupted["step"] == 3
    if method["name"] == "dino":
        teacher, student = trained.teacher_parameters(), trained.student_parameters()
        assert not all(torch.equal(t, s) for t, s in zip(teacher, student))  # EMA lags the student
        assert trained.centre.abs().sum() > 0

    (tmp_path / "ckpt" / "step_00000003.pt").unlink()  # as if killed after step 2's checkpoint
    _, resumed_result = pretrain(spec, tmp_path, progress=False)
    resumed = load_latest_checkpoint(tmp_path / "ckpt", spec.run_id)
    assert resumed_result.final_loss == result.final_loss
    assert resumed["model"].keys() == uninterrupted["model"].keys()
    for key, value in uninterrupted["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    for index, state in uninterrupted["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(resumed["optimizer"]["state"][index][name], value), (index, name)
