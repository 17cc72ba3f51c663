"""The paper's manifests (experiments/paper/): each validates, dry-runs through the real CLI with a run
count, a GPU-hour estimate and sbatch parameters, submits nothing and writes nothing; each runs the
paper's (or the official commands') settings for its table; and they agree with each other, with the
README's table and with the reference numbers where they must."""

from __future__ import annotations

import importlib.util
import re

import pytest
import torch

from experiments.cli import main
from experiments.manifest import EXPERIMENTS_DIR, load_manifest
from lejepa.backbones import create_backbone
from lejepa.data import DATASETS
from lejepa.spec import ModelSpec

PAPER = EXPERIMENTS_DIR / "paper"
MANIFESTS = sorted(PAPER.glob("*.yaml"))
TRANSFER_SETS = {"dtd", "fgvc_aircraft", "stanford_cars", "cifar10", "cifar100", "flowers102", "food101", "oxford_pets"}


def test_there_is_a_manifest_per_paper_table():
    assert {p.stem for p in MANIFESTS} == {"table1", "in1k", "table2", "table3", "table4", "table5", "table7", "fig9"}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.stem)
def test_dry_run_prints_runs_gpu_hours_and_sbatch_and_changes_nothing(path, tmp_path, capsys, no_submission):
    results = tmp_path / "results"
    code = main(["launch", f"paper/{path.stem}", "--dry-run", "--executor", "slurm", "--results", str(results)])
    out, err = capsys.readouterr()
    assert code == 0, err
    manifest = load_manifest(path)
    count = re.search(r"^(\d+) runs \((\d+) to run, 0 done, 0 queued/running\)", out, re.MULTILINE)
    assert count and int(count[1]) == int(count[2]) == len(manifest.runs) > 0
    hours = re.search(r"^GPU-hours: ([\d.]+) for all runs", out, re.MULTILINE)
    expected = sum(s.resources.nodes * s.resources.gpus_per_node * s.resources.time_min / 60 for s in manifest.runs)
    assert hours and float(hours[1]) == pytest.approx(expected, abs=0.05) and expected > 0
    sbatch = [line for line in out.splitlines() if line.startswith("  ") and "--array=0-" in line]
    assert sum(int(re.search(r"(\d+) task\(s\)", line)[1]) for line in sbatch) == len(manifest.runs)
    assert all("--gpus-per-node=" in line and "--partition=" in line and "--time=" in line for line in sbatch)
    assert out.rstrip().endswith("dry run: nothing submitted")
    assert not results.exists()  # no ledger, no logs, no run folders


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.stem)
def test_runs_are_gpu_jobs_with_registry_datasets_and_plausible_time_limits(path):
    manifest = load_manifest(path)
    assert manifest.name == f"paper-{path.stem.replace('_', '-')}"
    for spec in manifest.runs:
        assert spec.data.name in DATASETS
        resources = spec.resources
        assert resources.gpus_per_node >= 1 and resources.tasks_per_node in (1, resources.gpus_per_node)
        assert 30 <= resources.time_min <= 48 * 60, spec.run_id  # an estimate, not a blanket limit
        assert spec.data.num_workers == "auto" or spec.data.num_workers < resources.cpus_per_task
        assert resources.tasks_per_node * resources.cpus_per_task <= 96, spec.run_id  # fits a 96-core GPU node


def _recipe(spec) -> tuple:
    """What the official ImageNet-1k commands fix for every run (docs/sources.md S2)."""
    return (spec.data.name, spec.train.epochs, spec.train.lr, spec.train.weight_decay, spec.method["lamb"],
            spec.method["teacher"], spec.model.timm_kwargs.get("drop_path_rate"), spec.views.global_size,
            spec.views.local_size, spec.model.sync_batchnorm)


OFFICIAL_IN1K = ("imagenet1k", 100, 5e-4, 5e-2, 0.05, "ema", 0.1, 238, 98, True)


def test_table1_runs_the_official_ablation_scripts_once_each():
    runs = load_manifest(PAPER / "table1.yaml").runs
    assert len(runs) == 76 and all(s.model.arch == "vit_large_patch14_224" for s in runs)
    assert {_recipe(s) for s in runs} == {OFFICIAL_IN1K}
    assert all(s.method["patch_mask_ratio"] == 0.3 and s.model.proj_hidden == 2048 for s in runs)

    def key(s):
        return (s.method["num_slices"], s.method["t_max"], s.method["knots"], s.views.global_views,
                s.views.local_views, s.train.batch_size, s.method["embedding_dim"], s.model.proj_dim,
                s.model.timm_kwargs["reg_tokens"])

    keys = {key(s) for s in runs}
    assert len(keys) == len(runs)
    base = (1024, 3.0, 17, 2, 6, 512, 512, 512, 0)
    # (a) launch_epps_ablation.md, plus the 2048 slices the paper's Table 1a reports
    for slices in (512, 1024, 2048, 4096):
        for t_max in (1.0, 3.0, 5.0):
            for knots in (5, 17, 41):
                assert (slices, t_max, knots, *base[3:]) in keys
    # (b) launch_views_ablation.md: (global, all views, batch), 1000 slices
    for g, v, batch in [(1, 4, 256), (1, 6, 384), (1, 8, 512), (1, 10, 600), (2, 4, 256), (2, 6, 432), (2, 8, 512),
                        (2, 10, 640), (4, 6, 384), (4, 8, 512), (4, 10, 600)]:
        assert (1000, 3.0, 17, g, v - g, batch, 512, 512, 0) in keys
    # (c) batch sizes; (d) launch_proj_ablation.md; (e) launch_rtokens_ablation.md
    assert all((*base[:5], batch, *base[6:]) in keys for batch in (128, 256, 512, 1024))
    assert all((slices, 3.0, 17, 2, 6, 512, emb, proj, 0) in keys
               for slices in (1024, 4096) for emb in (512, 2048) for proj in (64, 128, 256, 512, 1024))
    assert all((slices, *base[1:8], reg) in keys for slices in (1024, 4096) for reg in (0, 1, 2, 4, 8))
    for spec in runs:  # the global batch splits evenly over the job's GPUs
        assert spec.train.batch_size % (spec.resources.nodes * spec.resources.gpus_per_node) == 0


def test_in1k_runs_the_official_recipe_for_vit_l_vit_h_and_convnextv2_h():
    runs = {s.model.arch: s for s in load_manifest(PAPER / "in1k.yaml").runs}
    assert set(runs) == {"vit_large_patch14_224", "vit_huge_patch14_224", "convnextv2_huge"}
    for spec in runs.values():
        assert _recipe(spec) == OFFICIAL_IN1K
        assert (spec.method["embedding_dim"], spec.model.proj_dim, spec.train.batch_size) == (512, 512, 512)
    assert runs["vit_large_patch14_224"].method["patch_mask_ratio"] == 0.3
    assert (runs["vit_large_patch14_224"].views.global_views, runs["vit_large_patch14_224"].views.local_views) == (2, 6)
    convnext = runs["convnextv2_huge"]  # no patch tokens; all views global for non-ViTs (Algorithm 2)
    assert convnext.method["patch_mask_ratio"] == 0.0
    assert (convnext.views.global_views, convnext.views.local_views) == (8, 0)


def test_table2_evaluates_the_in1k_weights_on_every_transfer_set():
    source = {s.model.arch: s for s in load_manifest(PAPER / "in1k.yaml").runs}
    runs = load_manifest(PAPER / "table2.yaml").runs
    assert {s.data.name for s in runs} == TRANSFER_SETS and len(runs) == 2 * len(TRANSFER_SETS)
    for spec in runs:
        origin = source[spec.model.arch]
        assert spec.model.init_from == f"paper-in1k/{origin.run_id}"
        assert spec.train.epochs == 0 and spec.eval.few_shot == (1, 10)
        assert spec.data.image_size == 224


def test_table3_is_galaxy10_by_samples_per_class_for_four_backbones_and_three_seeds():
    runs = load_manifest(PAPER / "table3.yaml").runs
    assert {(s.model.arch, s.seed) for s in runs} == {
        (a, seed) for a in ("convnextv2_nano", "levit_128", "resnet18", "resnet34") for seed in (0, 1, 2)}
    for spec in runs:
        assert spec.data.name == "galaxy10_decals" and spec.train.epochs == 400
        assert spec.eval.few_shot == (1, 2, 5, 10, 100, 1000)
        assert (spec.views.global_views, spec.views.local_views) == (8, 0)


def test_table4_is_predictor_by_swa_by_projector_depth_on_imagenet100():
    runs = load_manifest(PAPER / "table4.yaml").runs
    cells = {(s.model.arch, s.model.timm_kwargs.get("patch_size"), s.model.proj_layers, s.method["predictor_layers"] > 0,
              s.method["teacher"]) for s in runs}
    archs = {("resnet50", None), ("vit_small_patch8_224", None), ("vit_tiny_patch16_224", 8)}  # ViT-T/8
    assert cells == {(a, p, depth, pred, teacher) for a, p in archs for depth in (1, 2, 3) for pred in (False, True)
                     for teacher in ("none", "swa")}
    assert all(s.data.name == "imagenet100" and s.train.epochs == 400 for s in runs)


def test_table5_is_five_backbones_on_six_datasets_with_every_view_global():
    runs = load_manifest(PAPER / "table5.yaml").runs
    archs = {"convnextv2_nano", "resnet18", "resnet34", "resnext26ts", "swin_tiny_patch4_window7_224"}
    datasets = {"flowers102", "cifar100", "food101", "imagenette", "cifar10", "galaxy10_decals"}
    assert {(s.data.name, s.model.arch) for s in runs} == {(d, a) for d in datasets for a in archs}
    assert len(runs) == 30
    for spec in runs:
        assert (spec.views.global_views, spec.views.local_views, spec.data.image_size) == (8, 0, 224)
        assert spec.train.weight_decay == (5e-4 if spec.model.arch.startswith("res") else 5e-2)


TABLE7_CELLS = {2: (0.001, 0.005, 0.01, 0.02, 0.025),
                4: (0.001, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.15, 0.2),
                8: (0.001, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)}


def test_table7_has_exactly_the_papers_26_cells_all_views_global():
    runs = load_manifest(PAPER / "table7.yaml").runs
    cells = {(s.views.global_views, s.method["lamb"]) for s in runs}
    assert cells == {(v, lamb) for v, lambdas in TABLE7_CELLS.items() for lamb in lambdas} and len(runs) == 26
    assert all(s.views.local_views == 0 and s.model.arch == "resnet50" and s.data.name == "imagenet100" for s in runs)


def test_fig9_sweeps_the_generated_model_list_with_launch_inet10s_grid():
    listed = [line.strip() for line in (EXPERIMENTS_DIR / "paper" / "fig9_timm_models.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert len(listed) == 108 and all("." not in name for name in listed)
    runs = load_manifest(PAPER / "fig9.yaml").runs
    assert sorted({s.model.arch for s in runs}) == sorted(listed)
    grid = {(s.model.arch, s.method["lamb"], s.train.lr, s.train.weight_decay) for s in runs}
    assert grid == {(a, lamb, lr, wd) for a in listed for lamb in (0.01, 0.02, 0.05, 0.1) for lr in (3e-3, 1e-4)
                    for wd in (3e-2, 1e-5)}
    for spec in runs:  # launch_inet10.py's fixed settings
        assert (spec.data.name, spec.data.image_size, spec.train.epochs, spec.train.batch_size) == ("imagenette", 224, 400, 512)
        assert (spec.views.global_views, spec.views.local_views, spec.method["num_slices"]) == (8, 0, 1000)
        assert (spec.resources.nodes, spec.resources.gpus_per_node) == (1, 2)


def test_fig9_rule_keeps_small_models_without_a_tag():
    loader = importlib.util.spec_from_file_location("fig9_models", PAPER / "fig9_models.py")
    script = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(script)
    assert script.sweep_models({"a": 19_999_999, "b": 20_000_000, "c.tag": 1, "d": 5}) == ["a", "d"]


def test_resnet_stem_hybrid_vits_build_at_any_resolution():
    """vit_tiny_r_s16_p8_384 (in Fig. 9's list) is built for the run's 224 px and takes local crops too."""
    with torch.device("meta"):
        backbone = create_backbone(ModelSpec(arch="vit_tiny_r_s16_p8_384"), 224)
        assert backbone(torch.empty(2, 3, 224, 224)).shape == (2, 192)
        assert backbone(torch.empty(2, 3, 98, 98)).shape == (2, 192)


def test_paper_readme_lists_every_manifest_with_its_runs_and_gpu_hours():
    readme = (PAPER / "README.md").read_text()
    for path in MANIFESTS:
        row = re.search(rf"\| `{path.stem}` \| (\d+) \| ([\d,]+) \|$", readme, re.MULTILINE)
        runs = load_manifest(path).runs
        hours = sum(s.resources.nodes * s.resources.gpus_per_node * s.resources.time_min / 60 for s in runs)
        assert row and int(row[1]) == len(runs), path.stem
        assert int(row[2].replace(",", "")) == round(hours), path.stem
