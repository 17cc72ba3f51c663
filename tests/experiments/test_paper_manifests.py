"""The paper's manifests (experiments/paper/): each validates, dry-runs through the real CLI with a run
count, a GPU-hour estimate and sbatch parameters, submits nothing and writes nothing; and they agree
with each other and with the reference numbers where they must."""

from __future__ import annotations

import re

import pytest

from evaluation.references import canonical_dataset, load_paper_numbers
from experiments.cli import main
from experiments.manifest import EXPERIMENTS_DIR, load_manifest
from lejepa.architectures import curated_architectures
from lejepa.data import DATASETS

PAPER = EXPERIMENTS_DIR / "paper"
MANIFESTS = sorted(PAPER.glob("*.yaml"))
TRANSFER_SETS = {"dtd", "fgvc_aircraft", "stanford_cars", "cifar10", "cifar100", "flowers102", "food101", "oxford_pets"}


def test_there_is_a_manifest_per_paper_table():
    assert {p.stem for p in MANIFESTS} == {"in1k", "transfer", "in_domain", "architectures", "stability", "baselines"}


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
        assert spec.data.num_workers < resources.cpus_per_task


def test_in1k_covers_vit_sizes_up_to_huge_with_the_readme_recipe():
    runs = load_manifest(PAPER / "in1k.yaml").runs
    assert [s.model.arch for s in runs] == ["vit_small_patch16_224", "vit_base_patch16_224", "vit_large_patch14_224",
                                            "vit_huge_patch14_224", "convnextv2_huge"]
    for spec in runs:
        assert spec.data.name == "imagenet1k" and spec.train.epochs == 100
        assert (spec.views.global_views, spec.views.local_views, spec.views.global_size, spec.views.local_size) == (2, 6, 224, 98)
        assert (spec.train.lr, spec.train.weight_decay, spec.train.min_lr_ratio) == (5e-4, 5e-2, 1e-3)


def test_transfer_evaluates_the_in1k_weights_on_every_transfer_set():
    source = {s.model.arch: s for s in load_manifest(PAPER / "in1k.yaml").runs}
    runs = load_manifest(PAPER / "transfer.yaml").runs
    assert {s.data.name for s in runs} == TRANSFER_SETS and len(runs) == 2 * len(TRANSFER_SETS)
    for spec in runs:
        origin = source[spec.model.arch]
        assert spec.model.init_from == f"paper-in1k/{origin.run_id}"
        assert spec.train.epochs == 0 and spec.eval.few_shot == (1, 10)
        assert spec.data.image_size == 224


def test_every_transfer_cell_has_the_papers_number_for_each_shot_count():
    entries = load_paper_numbers()["entries"]
    for arch_label in ("ViT-L", "ConvNeXtV2-H"):
        for dataset in TRANSFER_SETS:
            for shots in (1, 10, None):
                found = [e for e in entries if e["method"] == "lejepa" and (e["arch"] or {}).get("label") == arch_label
                         and e["dataset"] == canonical_dataset(dataset) and e["protocol"]["shots"] == shots
                         and e["protocol"]["transfer_from"] == "imagenet1k"]
                assert len(found) == 1, (arch_label, dataset, shots)
                assert found[0]["source"] and 0 < found[0]["value"] < 100


def test_in_domain_covers_the_papers_small_datasets_with_resnets_and_vits():
    runs = load_manifest(PAPER / "in_domain.yaml").runs
    pairs = {(s.data.name, s.model.arch) for s in runs}
    datasets = {"cifar100", "flowers102", "galaxy10_decals", "imagenette", "imagenet100"}
    archs = {s.model.arch for s in runs}
    assert pairs == {(d, a) for d in datasets for a in archs} and len(runs) == len(pairs)
    assert {"resnet18", "resnet50", "vit_small_patch16_224"} <= archs
    for spec in runs:  # the README's weight decay by family
        assert spec.train.weight_decay == (5e-4 if spec.model.arch.startswith("resnet") else 5e-2)


def test_architecture_sweep_runs_the_curated_list_with_one_recipe():
    runs = load_manifest(PAPER / "architectures.yaml").runs
    curated = curated_architectures()
    # lejepa/architectures.yaml is the list; regenerate the manifest's backbone axis when it changes.
    assert [s.model.arch for s in runs] == [entry["name"] for entry in curated]
    assert len(runs) >= 60
    recipe = {(s.data.name, s.train.epochs, s.train.lr, s.train.batch_size, tuple(sorted(s.method.items()))) for s in runs}
    assert len(recipe) == 1


def test_stability_grid_is_lambda_by_views():
    runs = load_manifest(PAPER / "stability.yaml").runs
    grid = {(s.method["lamb"], s.views.local_views) for s in runs}
    assert len(grid) == len(runs) == 6 * 4
    assert {0.01, 0.02, 0.05, 0.1} <= {lamb for lamb, _ in grid}


def test_baselines_differ_only_in_the_method():
    runs = load_manifest(PAPER / "baselines.yaml").runs
    assert {s.method_name for s in runs} == {"lejepa", "vicreg", "dino"}
    by_setting: dict = {}
    for spec in runs:
        key = (spec.data, spec.model.arch, spec.views, spec.train, spec.eval, spec.seed)
        by_setting.setdefault(key, set()).add(spec.method_name)
    assert all(methods == {"lejepa", "vicreg", "dino"} for methods in by_setting.values()) and len(by_setting) == 3


def test_paper_readme_lists_every_manifest_with_its_run_count():
    readme = (PAPER / "README.md").read_text()
    for path in MANIFESTS:
        row = re.search(rf"^\| `{path.stem}` \|.*\| (\d+) \|$", readme, re.MULTILINE)
        assert row and int(row[1]) == len(load_manifest(path).runs), path.stem
