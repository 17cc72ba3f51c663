"""Every architecture of lejepa/architectures.yaml builds and trains with LeJEPA (docs/recipes.md section 6).

Each entry is built at 32 px (so with its family's small-image adaptation) and checked one of two ways:

- step: on the CPU, from timm's initialisation, a few LeJEPA optimisation steps on a batch of multi-crop
  views (2 global 32 px + 2 local 14 px crops of a few images). The loss must be finite, every parameter
  must get a finite gradient, the backbone's gradient must be non-zero, the SIGReg term must fall, and
  `Backbone.features` must be `feature_dim` wide.
- shape: on the meta device (no memory, no arithmetic), for entries over STEP_MAX_PARAMS_M million
  parameters, which would take too long on the CI's 2 cores: the same views through backbone, projector and
  the full LeJEPA loss (SIGReg included), a backward pass that reaches every parameter with a gradient of
  its shape, and the features' width.

`test_every_family_at_every_dataset_resolution` then builds the smallest entry of each timm family at
every image size the dataset registry trains at (16 to 224 px), with its local crops, on the meta device.

`test_zz_summary` prints which entries were checked which way. Set LEJEPA_STEP_MAX_PARAMS_M (e.g. 1000) to
step-check larger entries on a bigger machine.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter

import pytest
import torch
from conftest import make_tiny_spec

from lejepa.architectures import curated_architectures, family_of
from lejepa.backbones import ADAPTATIONS, check_architecture, create_backbone, timm_module
from lejepa.data import DATASETS
from lejepa.methods import build_method
from lejepa.spec import RunSpec
from lejepa.threads import one_thread
from lejepa.views import BatchedMultiCropViews, view_sizes

IMAGE_SIZE = 32  # CIFAR-sized: every family's small-image adaptation is in play
BATCH = 4  # images; each gives 2 global and 2 local views, so SIGReg sees 4 samples per view
STEPS = 2  # optimisation steps before SIGReg is measured again
LR = 3e-4  # AdamW; at 1e-3 the first steps of deep transformers (Swin-S) overshoot and raise SIGReg
STEP_MAX_PARAMS_M = float(os.environ.get("LEJEPA_STEP_MAX_PARAMS_M", "30"))  # ~2 minutes of steps in all
PARAMS_TOLERANCE = 0.05  # params_m is timm's default-resolution count; 32 px changes patch/position tables
# The families the paper's sweep covers (Fig. 9: ResNets, ViTs, ConvNets, MaxViTs, Swin) and ours adds.
REQUIRED_FAMILIES = {
    "ResNet", "ResNeXt", "Wide-ResNet", "RegNet", "EfficientNet", "MobileNetV3", "ConvNeXt", "ConvNeXt-V2",
    "ViT", "DeiT", "Swin", "MaxViT", "CoAtNet", "CaiT", "MetaFormer", "EdgeNeXt",
}

ENTRIES: list[dict] = list(curated_architectures())
STEP_CHECKED = [e["name"] for e in ENTRIES if e["params_m"] <= STEP_MAX_PARAMS_M]
SHAPE_CHECKED = [e["name"] for e in ENTRIES if e["params_m"] > STEP_MAX_PARAMS_M]
BY_NAME = {e["name"]: e for e in ENTRIES}
# The smallest entry of each timm family (the module that defines it: one set of build rules each).
FAMILY_REPRESENTATIVES = {
    module: min((e for e in ENTRIES if timm_module(e["name"]) == module), key=lambda e: e["params_m"])["name"]
    for module in dict.fromkeys(timm_module(e["name"]) for e in ENTRIES)
}
RESULTS: dict[str, str] = {}  # name -> one line saying how it was checked and what was measured


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Batches this small gain little from a second thread, and on a shared CPU OpenMP's threads mostly
    # wait for each other: with 2 threads on 2 busy cores (load ~5) these steps ran 5-8x slower than with 1.
    with one_thread():
        yield


def _spec(name: str) -> RunSpec:
    # lamb 0.5 (the paper uses ~0.05) so that two steps move SIGReg visibly; 64 slices keep it cheap.
    return make_tiny_spec(
        method={"lamb": 0.5, "num_slices": 64},
        model={"arch": name, "timm_kwargs": {}, "proj_hidden": 64, "proj_dim": 16},
        views={"global_views": 2, "local_views": 2},
    )


def _count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _check_params_m(name: str, backbone: torch.nn.Module) -> float:
    built = _count_params(backbone) / 1e6
    listed = BY_NAME[name]["params_m"]
    assert abs(built - listed) <= PARAMS_TOLERANCE * listed, f"{name}: built {built:.2f}M, listed {listed}M"
    return built


def _views(spec: RunSpec) -> list[torch.Tensor]:
    """The trainer's batched multi-crop views of a fixed batch of random images."""
    images = torch.randint(0, 256, (BATCH, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    views = BatchedMultiCropViews(spec.views, IMAGE_SIZE, (0.5,) * 3, (0.25,) * 3, spec.seed)(images, step=0)
    assert [tuple(v.shape) for v in views] == [(BATCH, 3, 32, 32)] * 2 + [(BATCH, 3, 14, 14)] * 2
    return views


# --- the list itself -------------------------------------------------------------------------------------


def test_list_covers_the_papers_breadth():
    names = [e["name"] for e in ENTRIES]
    assert len(names) >= 60
    assert len(set(names)) == len(names)
    assert all(set(e) == {"name", "family", "params_m"} for e in ENTRIES)
    families = Counter(e["family"] for e in ENTRIES)
    assert REQUIRED_FAMILIES <= set(families), REQUIRED_FAMILIES - set(families)
    assert len(families) >= 20
    for name in names:
        check_architecture(name)  # a timm name (raises with a suggestion otherwise)
    # Every entry's timm module has a small-image adaptation, so all of them train at 32 px.
    modules = {name: timm_module(name) for name in names}
    assert {m for m in modules.values() if m not in ADAPTATIONS} == set()
    # The size ranges the curated list spans (docs/recipes.md section 6).
    assert {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"} <= set(names)
    assert {"convnext_atto", "convnext_xxlarge", "convnextv2_atto", "convnextv2_huge"} <= set(names)
    vits = [n for n in names if BY_NAME[n]["family"] == "ViT"]
    assert any("tiny" in n for n in vits) and any("huge" in n for n in vits)
    assert {p for p in (8, 14, 16) if any(f"patch{p}" in n for n in vits)} == {8, 14, 16}


def test_list_is_what_the_cli_and_the_figures_read(capsys):
    from experiments.cli import main

    assert main(["list", "architectures"]) == 0
    assert capsys.readouterr().out.split() == [e["name"] for e in ENTRIES]
    assert all(family_of(e["name"]) == e["family"] for e in ENTRIES)


# --- every entry trains (or, too large for the CPU here, has consistent shapes) --------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", STEP_CHECKED)
def test_lejepa_steps(name):
    start = time.perf_counter()
    spec = _spec(name)
    method = build_method(spec, IMAGE_SIZE)
    backbone = method.backbone
    params_m = _check_params_m(name, backbone)
    views = _views(spec)
    optimizer = torch.optim.AdamW(method.parameters(), lr=LR)
    method.train()
    losses, sigregs = [], []
    for _ in range(STEPS):
        # Step index 0 every time: the same SIGReg slice directions, so the values compare across steps.
        loss, parts = method.loss(views, 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        missing = [n for n, p in method.named_parameters() if p.grad is None]
        assert missing == [], f"{name}: parameters without a gradient (DDP would refuse them): {missing[:5]}"
        assert all(torch.isfinite(p.grad).all() for p in method.parameters()), name
        backbone_grad = math.sqrt(sum(p.grad.square().sum().item() for p in backbone.parameters()))
        assert backbone_grad > 0, name
        optimizer.step()
        losses.append(loss.item())
        sigregs.append(parts["sigreg"].item())
    with torch.no_grad():
        sigregs.append(method.loss(views, 0)[1]["sigreg"].item())
    assert all(math.isfinite(v) for v in losses + sigregs), (losses, sigregs)
    assert sigregs[-1] < 0.99 * sigregs[0], f"{name}: SIGReg did not fall over {STEPS} steps: {sigregs}"

    method.eval()
    with torch.no_grad():
        features = backbone.features(views[0])
    assert features.shape == (BATCH, backbone.feature_dim), (name, features.shape, backbone.feature_dim)
    assert torch.isfinite(features).all()
    RESULTS[name] = (
        f"step   {params_m:7.2f}M  loss {losses[0]:.3f} -> {losses[-1]:.3f}  SIGReg "
        f"{sigregs[0]:.3f} -> {sigregs[-1]:.3f}  features {backbone.feature_dim}  {time.perf_counter() - start:.1f}s"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", SHAPE_CHECKED)
def test_meta_shapes(name):
    start = time.perf_counter()
    spec = _spec(name)
    with torch.device("meta"):
        method = build_method(spec, IMAGE_SIZE)
    backbone = method.backbone
    params_m = _check_params_m(name, backbone)
    global_size, local_size = view_sizes(spec.views, IMAGE_SIZE)
    views = [torch.empty(BATCH, 3, s, s, device="meta") for s in (global_size,) * 2 + (local_size,) * 2]
    method.train()
    z = method.embed_views(views, method.projector)
    assert z.shape == (4, BATCH, spec.model.proj_dim), (name, z.shape)
    loss, parts = method(views, 0)  # the full LeJEPA loss, SIGReg included
    assert loss.shape == () and set(parts) >= {"pred", "sigreg"}, (name, parts)
    loss.backward()
    wrong = [n for n, p in method.named_parameters() if p.grad is None or p.grad.shape != p.shape]
    assert wrong == [], f"{name}: parameters without a gradient of their shape: {wrong[:5]}"
    method.eval()
    features = backbone.features(views[0])
    assert features.shape == (BATCH, backbone.feature_dim), (name, features.shape, backbone.feature_dim)
    RESULTS[name] = (
        f"shape  {params_m:7.2f}M  projections {tuple(z.shape)}  features {backbone.feature_dim}  "
        f"{time.perf_counter() - start:.1f}s"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILY_REPRESENTATIVES.values()))
def test_every_family_at_every_dataset_resolution(name):
    """Shapes only (meta device): global views at each dataset's size and the local crops made from them,
    e.g. 98 px crops of 224 px images, which Swin's patch embedding takes only once padded."""
    sizes = sorted({info.image_size for info in DATASETS.values()} - {IMAGE_SIZE})  # 32 px: tested above
    assert {16, 28, 96, 128, 224} <= set(sizes)
    spec = _spec(name)
    for size in sizes:
        with torch.device("meta"):
            backbone = create_backbone(spec.model, size)
        for crop in view_sizes(spec.views, size):
            images = torch.empty(2, 3, crop, crop, device="meta")
            if backbone.is_token_model:  # otherwise features() is forward()
                assert backbone(images).shape == (2, backbone.embed_dim), (name, size, crop)
            assert backbone.features(images).shape == (2, backbone.feature_dim), (name, size, crop)


def test_zz_summary(capsys):
    """Which entries are checked which way (run last: it also reports the checks that ran in this session)."""
    assert len(STEP_CHECKED) + len(SHAPE_CHECKED) == len(ENTRIES) >= 60
    assert len(STEP_CHECKED) >= 50  # most of the list really trains here, not just the small ones
    assert all(BY_NAME[n]["params_m"] > STEP_MAX_PARAMS_M for n in SHAPE_CHECKED)
    lines = [
        (f"architectures.yaml: {len(ENTRIES)} architectures; {len(STEP_CHECKED)} step-checked on the CPU "
         f"(<= {STEP_MAX_PARAMS_M:g}M parameters), {len(SHAPE_CHECKED)} shape-checked on the meta device"),
    ]
    for family in dict.fromkeys(e["family"] for e in ENTRIES):
        members = [e["name"] for e in ENTRIES if e["family"] == family]
        step = [n for n in members if n in STEP_CHECKED]
        shape = [n for n in members if n in SHAPE_CHECKED]
        lines.append(f"  {family:12s} step: {', '.join(step) or '-'}" + (f" | shape: {', '.join(shape)}" if shape else ""))
    ran = {kind: [n for n, r in RESULTS.items() if r.startswith(kind)] for kind in ("step", "shape")}
    if RESULTS:
        seconds = sum(float(r.rsplit(" ", 1)[-1].rstrip("s")) for r in RESULTS.values())
        lines.append(f"this session: {len(ran['step'])} step-checked and {len(ran['shape'])} shape-checked "
                     f"passed, {seconds:.0f}s in all")
        lines += [f"  {name:34s} {RESULTS[name]}" for name in RESULTS]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
