"""Manifests (docs/pipeline.md section 1): expansion, and validation before anything is submitted.

Every problem names the file, the key path it came from and the closest valid names. The malformed
manifests at the bottom go through the real CLI (`experiments.cli.main`): each must exit with code 2 and a
message, never a traceback, submit nothing, and leave an existing record byte for byte as it was.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from conftest import TINY, manifest_problems, write_manifest

from evaluation.health import study_health
from evaluation.record import make_record, write_record
from experiments.cli import main
from experiments.manifest import EXPERIMENTS_DIR, load_manifest
from experiments.yaml_loader import parse_yaml
from lejepa.spec import RunSpec, SpecError

VALID = """\
name: tiny
defaults:
  data: {name: digits}
  model: {arch: resnet18, timm_kwargs: {channels: [8, 16, 32, 64]}, proj_hidden: 64, proj_dim: 16}
  views: {global_views: 2, local_views: 2}
  train: {max_steps: 4, batch_size: 32, lr: 1e-3, checkpoint_every: 2}
  eval: {linear_epochs: 2, knn_k: [10, 20], linear_lrs: [1.0e-3]}
  method: {name: lejepa, lamb: 0.05, num_slices: 32}
grid:
  seed: [0, 1]
  train.lr: [1e-3, 3e-3]
include:
  - {seed: 7, method: {name: vicreg}}
"""


# ------------------------------------------------------------------------------------------- expansion


def test_grid_times_include_with_defaults_underneath(tmp_path):
    manifest = load_manifest(write_manifest(tmp_path, VALID))
    assert manifest.name == "tiny"
    assert len(manifest.runs) == 2 * 2 + 1
    grid_runs = manifest.runs[:4]
    assert [(s.seed, s.train.lr) for s in grid_runs] == [(0, 1e-3), (0, 3e-3), (1, 1e-3), (1, 3e-3)]
    for spec in grid_runs:
        assert spec.data.name == "digits" and spec.model.proj_dim == 16 and spec.train.max_steps == 4
        assert spec.method == {"name": "lejepa", "lamb": 0.05, "num_slices": 32}
        assert spec.eval.knn_k == (10, 20)  # YAML lists become the spec's tuples
    extra = manifest.runs[4]
    assert extra.seed == 7 and extra.method == {"name": "vicreg"}  # a whole method section replaces the default's
    assert manifest.origins[4] == "include[0]" and manifest.origins[0] == "grid: seed=0, train.lr=0.001"
    assert len({s.run_id for s in manifest.runs}) == 5
    # Same manifest, same run ids: relaunching finds the earlier runs' records.
    assert [s.run_id for s in load_manifest(tmp_path / "manifest.yaml").runs] == [s.run_id for s in manifest.runs]


def test_overrides_apply_to_every_run_and_change_run_ids(tmp_path):
    path = write_manifest(tmp_path, VALID)
    plain = load_manifest(path)
    changed = load_manifest(path, ["train.max_steps=9", "eval.knn_k=[5]", "model.proj_dim=8"])
    assert all(s.train.max_steps == 9 and s.eval.knn_k == (5,) and s.model.proj_dim == 8 for s in changed.runs)
    assert not {s.run_id for s in plain.runs} & {s.run_id for s in changed.runs}
    # An override beats the grid: pinning the swept train.lr collapses the grid, which is reported.
    text = manifest_problems(path, ["train.lr=0.01"])
    assert "grid: seed=0, train.lr=0.003: same run as grid: seed=0, train.lr=0.001" in text


def test_resources_do_not_change_run_ids(tmp_path):
    path = write_manifest(tmp_path, VALID)
    moved = load_manifest(path, ["resources.partition=gpu", "resources.mem_gb=64"])
    assert [s.run_id for s in moved.runs] == [s.run_id for s in load_manifest(path).runs]


@pytest.mark.parametrize("arch", ["resnet18", "convnextv2_atto", "vit_tiny_patch16_224", "maxvit_tiny_tf_224",
                                  "resnet50.a1_in1k"])
def test_any_timm_architecture_name_is_accepted(tmp_path, arch):
    manifest = load_manifest(write_manifest(tmp_path, VALID), [f"model.arch={arch}", "model.timm_kwargs={}"])
    assert {s.model.arch for s in manifest.runs} == {arch}


def test_every_problem_is_reported_at_once_with_file_key_path_and_suggestions(tmp_path):
    path = write_manifest(tmp_path, """\
        name: tiny
        defaults:
          data: {name: cifar-10}
          train: {lrr: 1e-3, batch_size: big}
          method: {name: lejepa, lambda: 0.1}
        grid:
          model.arch: [resnet18, vit_smal_patch16_224]
        """)
    text = manifest_problems(path)
    lines = text.splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), text
    expected = [
        "defaults.train.lrr: train has no key 'lrr'; did you mean lr?",
        "defaults.train.batch_size: expected an integer, got 'big' (str)",
        "defaults.data.name: unknown dataset 'cifar-10'; did you mean cifar10",
        "grid.model.arch[1]: unknown timm architecture 'vit_smal_patch16_224'; did you mean vit_small_patch16_224",
        "defaults.method.lambda: method 'lejepa' has no option 'lambda'; did you mean lamb?",
    ]
    for fragment in expected:
        assert fragment in text, f"missing {fragment!r} in:\n{text}"
    assert text.count("unknown dataset 'cifar-10'") == 1  # said once, not once per grid run


def test_unknown_method_names_the_known_ones(tmp_path):
    text = manifest_problems(write_manifest(tmp_path, VALID), ["method={name: lejepaa}"])
    assert "override 'method={name: lejepaa}'" in text and "unknown method 'lejepaa'" in text
    assert "did you mean lejepa" in text


@pytest.mark.parametrize("override, fragment", [
    ("train.lrr=1e-3", "override 'train.lrr=1e-3': train has no key 'lrr'; did you mean lr?"),
    ("train.lr=fast", "override 'train.lr=fast': train.lr: expected a number, got 'fast' (str)"),
    ("lr=1e-3", "override 'lr=1e-3': unknown key 'lr'; did you mean train.lr?"),
    ("data.name=imagenet", "override 'data.name=imagenet': unknown dataset 'imagenet'; did you mean"),
    ("eval.knn_k=[10, ", "override 'eval.knn_k=[10, ': value '[10, ' is not valid YAML"),
    ("=3", "override '=3': expected key=value"),
])
def test_overrides_go_through_the_same_validation(tmp_path, override, fragment):
    text = manifest_problems(write_manifest(tmp_path, VALID), [override])
    assert fragment in text, text
    assert text.startswith(str(tmp_path / "manifest.yaml"))


def test_named_manifest_under_experiments_is_found():
    manifest = load_manifest("quickstart")
    assert manifest.path == EXPERIMENTS_DIR / "quickstart.yaml" and manifest.name == "quickstart"


@pytest.mark.parametrize(("name", "runs"), [
    ("quickstart", 3), ("baselines", 12), ("baselines_cifar100", 9), ("sweep_lambda_views", 9),
    ("sweep_sigreg_ablation", 7), ("small_data_cpu", 4),
])
def test_the_shipped_cpu_manifests_validate(name, runs):
    assert len(load_manifest(name).runs) == runs


def test_every_baselines_run_has_its_random_init_reference():
    """The health check's probe gap (evaluation/health.py) needs random-init runs with the same data, backbone
    and probe: each of baselines' 9 pretraining runs is compared with the mean of its 3 random-init rows."""
    runs = load_manifest("baselines").runs
    records = [{"run_id": s.run_id, "status": "done", "spec": s.to_dict(),
                "evaluation": {"linear_top1": 0.5 + 0.01 * s.seed if s.method_name == "random_init" else 0.8}}
               for s in runs]
    health = study_health(records)
    trained = [s for s in runs if s.method_name != "random_init"]
    assert sorted({s.method_name for s in trained}) == ["dino", "lejepa", "vicreg"] and len(trained) == 9
    for spec in trained:
        gap = health[spec.run_id]["checks"]["probe_gap_to_random_init"]
        assert gap["random_init_runs"] == 3 and gap["random_init_top1"] == pytest.approx(51.0)
        assert gap["value"] == pytest.approx(29.0)


def test_small_data_transfer_run_holds_the_quickstart_lejepa_weights():
    """Figure 6's transfer run evaluates the quickstart's LeJEPA run: same method, model and resolution."""
    (transfer,) = [s for s in load_manifest("small_data_cpu").runs if s.model.init_from]
    (source,) = [s for s in load_manifest("quickstart").runs if s.method_name == "lejepa"]
    assert transfer.model.init_from == f"quickstart/{source.run_id}"
    assert transfer.method == source.method and transfer.train.epochs == 0
    assert dataclasses.replace(transfer.model, init_from=None) == source.model
    assert transfer.data.image_size == 28 and source.data.name == "fashion_mnist"  # Fashion-MNIST's size


# ---------------------------------------------------------------------- malformed manifests via the CLI

# (id, manifest text, extra CLI words, fragments the message must contain). Each is checked through
# `lejepa launch ... --force`: the strongest request, so a validation hole would show as a moved record.
MALFORMED = [
    ("bad YAML", """\
        name: bad
        defaults:
          train: {lr: 1e-3
        grid: {seed: [0]}
        """, [], ["manifest.yaml:4:5: bad YAML: while parsing a flow mapping (started at line 3, column 10) expected ',' or '}'"]),
    ("key given twice", """\
        name: bad
        defaults:
          train: {lr: 1e-3}
          train: {epochs: 2}
        """, [], ["manifest.yaml:4:3: bad YAML", "key 'train' appears twice in this mapping (first on line 3)"]),
    ("not a mapping", """\
        - seed: 0
        - seed: 1
        """, [], ["top level: a manifest is a mapping with keys name, description, defaults, grid, include; got list"]),
    ("empty file", "", [], ["top level: a manifest is a mapping with keys", "got an empty file"]),
    ("unknown top-level key", """\
        name: bad
        grids: {seed: [0, 1]}
        """, [], ["grids: unknown top-level key 'grids'; did you mean grid?"]),
    ("unknown key in a section", """\
        name: bad
        defaults:
          train: {lr: 1e-3, epocs: 3}
        """, [], ["defaults.train.epocs: train has no key 'epocs'; did you mean epochs?", "(valid: epochs, max_steps"]),
    ("key outside its section", """\
        name: bad
        defaults: {lr: 1e-3}
        """, [], ["defaults.lr: unknown key 'lr'; did you mean train.lr?"]),
    ("wrong type", """\
        name: bad
        defaults:
          train: {batch_size: "64"}
        """, [], ["defaults.train.batch_size: expected an integer, got '64' (str)"]),
    ("wrong type in a list", """\
        name: bad
        defaults:
          eval: {knn_k: 20}
        """, [], ["defaults.eval.knn_k: expected a list of integers, got 20 (int)"]),
    ("unknown dataset", """\
        name: bad
        defaults:
          data: {name: cifar-10}
        """, [], ["defaults.data.name: unknown dataset 'cifar-10'; did you mean cifar10", "lejepa list datasets"]),
    ("unknown architecture", """\
        name: bad
        grid:
          model.arch: [resnet18, resnet-50]
        """, [], ["grid.model.arch[1]: unknown timm architecture 'resnet-50'; did you mean", "resnet50"]),
    ("unknown method", """\
        name: bad
        defaults:
          method: {name: simclr}
        """, [], ["defaults.method.name: unknown method 'simclr' (known: dino, lejepa,"]),
    ("unknown method option", """\
        name: bad
        defaults:
          method: {name: lejepa, lambda: 0.1}
        """, [], ["defaults.method.lambda: method 'lejepa' has no option 'lambda'; did you mean lamb?"]),
    ("empty grid", """\
        name: bad
        grid:
          seed: []
        """, [], ["grid.seed: empty list: the grid would have no runs"]),
    ("grid value not a list", """\
        name: bad
        grid:
          seed: 3
        """, [], ["grid.seed: expected a list of values, got 3; write [3] or move it to defaults"]),
    ("duplicate runs", """\
        name: bad
        grid:
          seed: [0, 1]
        include:
          - {seed: 1}
        """, [], ["include[0]: same run as grid: seed=1 (run_id lejepa-fashion_mnist-resnet18-s1-"]),
    ("bad experiment name", """\
        name: my experiment
        """, [], ["name: experiment name must be letters, digits, '_', '-' or '.'", '"my experiment"']),
    ("bad override value", "name: bad\n", ["train.lr=fast"],
     ["override 'train.lr=fast': train.lr: expected a number, got 'fast' (str)"]),
    ("unknown override key", "name: bad\n", ["optim.lr=1e-3"],
     ["override 'optim.lr=1e-3': unknown key 'optim'"]),
    ("missing data folder", """\
        name: bad
        defaults:
          data: {name: cifar10, root: /nonexistent/cifar10}
        """, [], ["data.name=cifar10: dataset folder /nonexistent/cifar10 does not exist (1 run(s) use it)",
                  "To get it:", "data.root=/path/to/cifar10"]),
    ("more nodes than the local executor has", """\
        name: bad
        defaults:
          data: {name: digits}
          resources: {nodes: 2}
        """, [], ["1 run(s) ask for resources.nodes > 1", "use --executor slurm, or resources.nodes=1"]),
]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def results_with_a_record(tmp_path, tiny_spec) -> Path:
    """A results folder that already holds a finished record of experiment 'bad' (the malformed manifests'
    name) and its checkpoint: a launch that got through would move them aside (--force) or add files."""
    root = tmp_path / "results"
    spec = tiny_spec(experiment="bad")
    write_record(root, make_record(spec, "done", pretrain={"steps": 6}, evaluation={"linear_top1": 0.5}))
    (root / "bad" / spec.run_id / "ckpt").mkdir()
    (root / "bad" / spec.run_id / "ckpt" / "step_00000006.pt").write_bytes(b"weights")
    return root


CLI_CASES = [pytest.param(case, executor, id=f"{executor}-{case[0]}") for executor in ("local", "slurm")
             for case in MALFORMED if not (executor == "slurm" and "nodes" in case[0])]  # slurm hosts those


@pytest.mark.parametrize("case, executor", CLI_CASES)
def test_malformed_manifest_exits_2_with_a_message_and_changes_nothing(
        case, executor, tmp_path, results_with_a_record, no_submission, capsys):
    _, text, extra, fragments = case
    path = write_manifest(tmp_path, text)
    before = _snapshot(results_with_a_record)
    code = main(["launch", str(path), *extra, "--executor", executor, "--force", "--results", str(results_with_a_record)])
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in out + err
    assert err.startswith("lejepa launch: error:\n"), err
    for fragment in fragments:
        assert fragment in err, f"missing {fragment!r} in:\n{err}"
    assert str(path) in err  # the file is named
    assert _snapshot(results_with_a_record) == before  # no ledger, no logs, the record and checkpoint untouched
    assert not (results_with_a_record / "bad" / "launch.json").exists()


@pytest.mark.parametrize("command", [["status"], ["report"], ["run", "--only", "x"], ["launch", "--dry-run"]])
def test_every_manifest_command_validates_the_same_way(command, tmp_path, capsys):
    path = write_manifest(tmp_path, "name: bad\ndefaults:\n  train: {epocs: 3}\n")
    assert main([command[0], str(path), *command[1:], "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: defaults.train.epocs: train has no key 'epocs'; did you mean epochs?" in err
    assert "Traceback" not in err and not (tmp_path / "results").exists()


def test_missing_manifest_file_says_where_it_looked(tmp_path, capsys):
    assert main(["launch", str(tmp_path / "nope.yaml"), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml: no such manifest file" in err and "manifests in" in err and "quickstart" in err
    assert main(["launch", "quickstrat", "--dry-run"]) == 2
    assert "did you mean quickstart?" in capsys.readouterr().err


def test_dry_run_validates_and_submits_nothing(tmp_path, capsys, no_submission):
    path = write_manifest(tmp_path, VALID)
    assert main(["launch", str(path), "--dry-run", "--executor", "slurm", "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "5 runs (5 to run, 0 done, 0 queued/running)" in out and "dry run: nothing submitted" in out
    assert "--array=0-4" in out
    assert not (tmp_path / "r").exists()


# Values of the right type but outside what a run can use. Each used to pass `--dry-run` and either fail in
# the job, after the queue wait, or record a wrong result as done (an untrained backbone under the method's
# name, a chance-level probe). The spec's own checks now refuse them when the manifest is read.
OUT_OF_RANGE = [
    ("train.batch_size=-1", "train.batch_size: must be > 0, got -1"),
    ("train.batch_size=0", "train.batch_size: must be > 0, got 0"),
    ("train.epochs=-1", "train.epochs: must be >= 0, got -1.0"),
    ("train.epochs=0", "train.epochs: is 0, so method 'lejepa' would record an untrained backbone"),
    ("train.max_steps=0", "train.max_steps: must be > 0, got 0"),
    ("train.max_steps=-5", "train.max_steps: must be > 0, got -5"),
    ("train.lr=.nan", "train.lr: must be a finite number, got nan"),
    ("train.lr=-1e-3", "train.lr: must be > 0, got -0.001"),
    ("train.checkpoint_every=0", "train.checkpoint_every: must be > 0, got 0"),
    ("train.device=gpu", "must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("train.precision=fp16", "train.precision: must be one of auto, fp32, bf16, got 'fp16'"),
    ("eval.linear_epochs=0", "eval.linear_epochs: must be > 0, got 0"),
    ("eval.holdout_fraction=1.5", "eval.holdout_fraction: must be in (0, 1), got 1.5"),
    ("resources.cpus_per_task=0", "resources.cpus_per_task: must be > 0, got 0"),
    ("resources.mem_gb=-4", "resources.mem_gb: must be > 0, got -4"),
    ("resources.time_min=-10", "resources.time_min: must be > 0, got -10"),
    ("data.image_size=-1", "data.image_size: must be > 0, got -1"),
    ("views.global_views=0", "views.global_views: must be > 0, got 0"),
    ("model.proj_dim=0", "model.proj_dim: must be > 0, got 0"),
    ("views.local_scale=[0.3, 0.05]", "the range must be [low, high] with low <= high, got [0.3, 0.05]"),
]


@pytest.mark.parametrize("override, fragment", OUT_OF_RANGE, ids=[case[0] for case in OUT_OF_RANGE])
def test_out_of_range_values_are_refused_before_anything_runs(tmp_path, capsys, no_submission, override, fragment):
    path = write_manifest(tmp_path, VALID)
    assert main(["launch", str(path), override, "--dry-run", "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"override '{override}'" in err and fragment in err, err
    assert "Traceback" not in err and not (tmp_path / "r").exists()
    if override == "train.epochs=0":  # a rule between sections, checked with the manifest; a spec built in
        return  # Python with it fails in the job (tests/evaluation/test_pipeline.py), never records done
    # However the spec is built (Python, `lejepa run`, a job's pickled spec), the value cannot make one.
    key, _, text = override.partition("=")
    section, name = key.split(".")
    values = TINY.to_dict()
    values[section][name] = parse_yaml(text, override)
    with pytest.raises(SpecError, match=re.escape(fragment.split(": ", 1)[-1].split(", got")[0])):
        RunSpec.from_dict(values)


@pytest.mark.parametrize("key", ["partition", "account", "constraint", "qos"])
def test_sbatch_values_with_line_breaks_or_shell_characters_are_refused(tmp_path, key):
    """A newline would end the #SBATCH block and become a shell line of the job script."""
    text = manifest_problems(write_manifest(tmp_path, VALID), [f'resources.{key}="gpu\\nrm -rf ~"'])
    assert f"resources.{key}" in text and "holds a character sbatch would misread" in text
    assert len(load_manifest(write_manifest(tmp_path, VALID), [f"resources.{key}=a100&gpu_x"]).runs) == 5
