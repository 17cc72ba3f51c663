"""LeJEPA's optional heuristics (docs/lejepa.md section 2): the averaged teacher and its schedules, patch
masking, the embedding layer, the predictor, all views global; and a run with them resumes after an
interruption to the uninterrupted run's numbers, teacher included."""

from __future__ import annotations

import pytest
import torch
from conftest import make_tiny_spec
from torch import nn

from lejepa.backbones import Backbone, create_backbone
from lejepa.checkpoint import checkpoint_paths
from lejepa.masking import kept_patches
from lejepa.methods import build_method, parse_options
from lejepa.methods.lejepa import LeJEPAOptions, mask_generator
from lejepa.methods.teacher import AveragedCopy, ema_momentum
from lejepa.spec import ModelSpec, RunSpec, ViewSpec
from lejepa.train import learning_rate, pretrain
from lejepa.views import MultiCropViews

TINY_VIT = {"arch": "vit_tiny_patch16_224", "timm_kwargs": {"embed_dim": 32, "depth": 2, "num_heads": 2}}


def _vit_spec(**method) -> RunSpec:
    return make_tiny_spec(model=TINY_VIT, method={"name": "lejepa", "lamb": 0.05, "num_slices": 32, **method})


def _views(spec: RunSpec, batch: int = 8, seed: int = 0) -> list[torch.Tensor]:
    """Random tensors shaped like the spec's views of 16 px digits (16 px global, 8 px local)."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [16] * spec.views.global_views + [8] * spec.views.local_views
    return [torch.randn(batch, 3, s, s, generator=generator) for s in sizes]


# --------------------------------------------------------------------------------------------- teacher


def test_ema_momentum_is_stable_pretrainings_cosine():
    assert ema_momentum(0, 100, 0.996, 1.0) == pytest.approx(0.996)
    assert ema_momentum(50, 100, 0.996, 1.0) == pytest.approx(0.998)
    assert ema_momentum(100, 100, 0.996, 1.0) == pytest.approx(1.0)


def _student() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def _perturb(module: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]:
            tensor.add_(torch.randn(tensor.shape, generator=generator))
        module[1].num_batches_tracked += 3


def test_ema_update_mixes_parameters_and_float_buffers_and_copies_integer_buffers():
    student = _student()
    teacher = AveragedCopy({"net": student}, "ema", start=0.9, end=0.9)
    before = {k: v.clone() for k, v in teacher.copies["net"].state_dict().items()}
    _perturb(student, seed=1)
    teacher.update({"net": student}, step=3, total_steps=10)
    after, now = teacher.copies["net"].state_dict(), student.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.running_mean", "1.running_var"):
        assert torch.allclose(after[key], 0.9 * before[key] + 0.1 * now[key], rtol=0, atol=1e-6), key
    assert int(after["1.num_batches_tracked"]) == 3
    assert not any(p.requires_grad for p in teacher.parameters())


def test_swa_teacher_is_the_mean_of_every_snapshot_so_far():
    student = _student()
    snapshots = [student[0].weight.detach().clone()]
    teacher = AveragedCopy({"net": student}, "swa")
    for update in range(3):
        _perturb(student, seed=10 + update)
        snapshots.append(student[0].weight.detach().clone())
        teacher.update({"net": student}, step=update, total_steps=100)
    assert int(teacher.updates) == 3
    assert torch.allclose(teacher.copies["net"][0].weight, torch.stack(snapshots).mean(0), atol=1e-6)


def test_teacher_starts_as_the_student_gets_no_gradient_and_is_evaluated():
    spec = make_tiny_spec()
    plain, views = build_method(spec, 16), _views(spec)
    with_teacher = build_method(make_tiny_spec(method={**spec.method, "teacher": "ema"}), 16)
    loss_plain, _ = plain.loss(views, step=0)
    loss_teacher, _ = with_teacher.loss(views, step=0)
    # Same weights (same seed), the teacher an exact copy: the centre and so the loss are the same ...
    assert loss_teacher.item() == pytest.approx(loss_plain.item(), rel=1e-6)
    # ... but the centre is a target now: no gradient flows through it.
    loss_plain.backward()
    loss_teacher.backward()
    first = next(iter(plain.projector.parameters()))
    assert not torch.allclose(first.grad, next(iter(with_teacher.projector.parameters())).grad)
    teacher_params = {id(p) for p in with_teacher.teacher.parameters()}
    trained = {id(p) for group in with_teacher.parameter_groups(0.05) for p in group["params"]}
    assert teacher_params and not teacher_params & trained
    assert all(p.grad is None for p in with_teacher.teacher.parameters())
    assert with_teacher.evaluation_backbone() is with_teacher.teacher.copies["backbone"]
    assert plain.evaluation_backbone() is plain.backbone
    assert any(key.startswith("teacher.copies.backbone.") for key in with_teacher.state_dict())


def test_unknown_teacher_kind_and_bad_ratios_are_refused_by_name():
    with pytest.raises(ValueError, match="lejepa.teacher: must be one of none, ema, swa, got 'polyak'"):
        LeJEPAOptions(teacher="polyak")
    with pytest.raises(ValueError, match=r"lejepa.patch_mask_ratio: must be in \[0, 1\), got 1.0"):
        LeJEPAOptions(patch_mask_ratio=1.0)


# ------------------------------------------------------------------------------------------ patch masking


def test_kept_patches_are_an_exact_count_sorted_distinct_and_seeded():
    keep = kept_patches(4, 49, 0.3, torch.Generator().manual_seed(5))
    assert keep.shape == (4, 49 - 14)  # int(49 * 0.3) = 14 masked, as stable-pretraining counts them
    assert all(len(set(row.tolist())) == 35 and row.tolist() == sorted(row.tolist()) for row in keep)
    assert torch.equal(keep, kept_patches(4, 49, 0.3, torch.Generator().manual_seed(5)))
    assert len({tuple(row.tolist()) for row in keep}) > 1  # drawn per image


def test_mask_draws_are_a_function_of_seed_step_rank_and_group():
    def draw(*key):
        return torch.rand(8, generator=mask_generator(*key))

    assert torch.equal(draw(0, 7, 0, 1), draw(0, 7, 0, 1))
    for other in [(1, 7, 0, 1), (0, 8, 0, 1), (0, 7, 1, 1), (0, 7, 0, 2)]:
        assert not torch.equal(draw(0, 7, 0, 1), draw(*other))


def _tiny_vit() -> Backbone:
    torch.manual_seed(0)
    return create_backbone(ModelSpec(**TINY_VIT), 16).eval()


def test_masked_forward_with_nothing_masked_is_the_plain_forward():
    backbone, images = _tiny_vit(), torch.randn(3, 3, 16, 16)
    assert torch.equal(backbone.forward_masked(images, 0.0, torch.Generator()), backbone(images))


def test_masked_patches_do_not_reach_the_output_and_kept_ones_do():
    backbone, images = _tiny_vit(), torch.randn(2, 3, 16, 16)  # 4 x 4 patches of 4 px
    keep = kept_patches(2, 16, 0.5, torch.Generator().manual_seed(3))
    dropped = min(set(range(16)) - set(keep[0].tolist()))
    kept = keep[0, 0].item()

    def with_patch_changed(index: int) -> torch.Tensor:
        changed = images.clone()
        row, col = divmod(index, 4)
        changed[0, :, 4 * row: 4 * row + 4, 4 * col: 4 * col + 4] += 5.0
        return backbone.forward_masked(changed, 0.5, torch.Generator().manual_seed(3))

    reference = backbone.forward_masked(images, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(with_patch_changed(dropped)[0], reference[0])
    assert not torch.allclose(with_patch_changed(kept)[0], reference[0])


def test_patch_masking_needs_a_vit():
    with pytest.raises(ValueError, match="needs a ViT backbone.*resnet18.*set it to 0"):
        build_method(make_tiny_spec(method={"name": "lejepa", "patch_mask_ratio": 0.3}), 16)


def test_student_views_are_masked_and_the_masks_replay_for_the_same_step():
    spec = _vit_spec(patch_mask_ratio=0.5)
    method, views = build_method(spec, 16).eval(), _views(spec)
    unmasked = build_method(_vit_spec(), 16).eval()
    assert torch.equal(method.student_projections(views, 4), method.student_projections(views, 4))
    assert not torch.equal(method.student_projections(views, 4), method.student_projections(views, 5))
    assert not torch.equal(method.student_projections(views, 4), unmasked.student_projections(views, 4))


# ------------------------------------------------------------------------------ embedding, predictor, views


def test_embedding_layer_sits_between_backbone_and_projector():
    spec = make_tiny_spec(method={"name": "lejepa", "embedding_dim": 24})
    method = build_method(spec, 16)
    assert (method.embedding.in_features, method.embedding.out_features) == (method.backbone.embed_dim, 24)
    assert next(m for m in method.projector.modules() if isinstance(m, nn.Linear)).in_features == 24
    assert method.student_projections(_views(spec), 0).shape == (4, 8, spec.model.proj_dim)
    # Off by default: the state of a run without it has no such weights (older checkpoints still load).
    assert not any(key.startswith("embedding.") for key in build_method(make_tiny_spec(), 16).state_dict())


class _Identity(nn.Identity):
    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim


def _identity_lejepa(global_views: int, local_views: int, **options):
    """LeJEPA whose backbone and projector are identities: views are the embeddings."""
    method = {"name": "lejepa", "lamb": 0.05, "num_slices": 16, **options}
    spec = RunSpec(experiment="options", method=method, model=ModelSpec(proj_hidden=8, proj_layers=2, proj_dim=2),
                   views=ViewSpec(global_views=global_views, local_views=local_views))
    cls, parsed = parse_options(method)
    built = cls(Backbone(_Identity(2)), parsed, spec)
    built.projector = nn.Identity()
    return built


class _Double(nn.Module):
    def forward(self, x):
        return 2 * x


def test_predictor_output_is_what_predicts_the_centre():
    method = _identity_lejepa(2, 0, predictor_layers=2)
    assert sum(isinstance(m, nn.Linear) for m in method.predictor.modules()) == 2
    method.predictor = _Double()
    g1, g2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 2.0]])
    _, parts = method.loss([g1, g2], step=0)
    # centre [2, 1] from the projections; predictions 2 g1 = [2, 0], 2 g2 = [6, 4]: errors 0+1, 16+9
    assert parts["pred"].item() == pytest.approx((0 + 1 + 16 + 9) / 4)


def test_all_views_global_centres_on_every_view():
    spec = make_tiny_spec(views={"global_views": 4, "local_views": 0})
    views = MultiCropViews(spec.views, 16, (0.5,) * 3, (0.5,) * 3)(torch.zeros(3, 20, 20, dtype=torch.uint8))
    assert [tuple(v.shape) for v in views] == [(3, 16, 16)] * 4
    method = _identity_lejepa(4, 0)
    rows = [torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 4.0]]),
            torch.tensor([[2.0, 4.0]])]
    _, parts = method.loss(rows, step=0)
    # centre of all four = [1, 2]; squared errors per view 1 + 4, summed over 4 views and 2 dims
    assert parts["pred"].item() == pytest.approx(4 * 5 / 8)


# --------------------------------------------------------------------------------------------- resume


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("teacher", ["ema", "swa"])
def test_run_with_every_option_resumes_to_the_uninterrupted_numbers(tmp_path, monkeypatch, teacher):
    """Teacher, masking, embedding and predictor on a tiny ViT: interrupted after step 5 (checkpoint at 3),
    resumed, it ends with the uninterrupted run's loss, weights and teacher."""
    spec = _vit_spec(teacher=teacher, patch_mask_ratio=0.5, embedding_dim=24, predictor_layers=2)
    spec = make_tiny_spec(model=TINY_VIT, method=spec.method, train={"max_steps": 8, "checkpoint_every": 3})
    reference_method, reference = pretrain(spec, tmp_path / "reference", progress=False)

    def learning_rate_then_stop(step, total_steps, run_spec):
        if step == 5:
            raise Interrupted
        return learning_rate(step, total_steps, run_spec)

    run_dir = tmp_path / "interrupted"
    monkeypatch.setattr("lejepa.train.learning_rate", learning_rate_then_stop)
    with pytest.raises(Interrupted):
        pretrain(spec, run_dir, progress=False)
    assert checkpoint_paths(run_dir / "ckpt")[0].name == "step_00000003.pt"
    monkeypatch.undo()
    resumed_method, resumed = pretrain(spec, run_dir, progress=False)

    assert resumed.steps == reference.steps == 8
    assert resumed.final_loss == reference.final_loss and resumed.final_parts == reference.final_parts
    reference_state, resumed_state = reference_method.state_dict(), resumed_method.state_dict()
    assert reference_state.keys() == resumed_state.keys()
    for name, tensor in reference_state.items():
        assert torch.equal(tensor, resumed_state[name]), name
    # The teacher really moved, and is not the student: the comparison above covered a live state.
    teacher_weight = reference_state["teacher.copies.projector.0.weight"]
    assert not torch.equal(teacher_weight, reference_state["projector.0.weight"])
    assert not torch.equal(teacher_weight, build_method(spec, 16).state_dict()["teacher.copies.projector.0.weight"])
    if teacher == "swa":
        assert int(reference_state["teacher.updates"]) == 8
