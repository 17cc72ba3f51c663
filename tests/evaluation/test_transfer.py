"""Evaluating another run's weights (model.init_from), from manifest to record: a manifest names the
source manifest and gets the one matching run; the job loads that run's final weights instead of
pretraining, evaluates them on its own dataset and records where they came from. Also the two grid
additions the paper manifests use: named axes and include-only manifests."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
from conftest import make_tiny_spec, manifest_problems, write_crafted_checkpoint, write_manifest

from evaluation.pipeline import run_job
from evaluation.record import make_record, read_record, record_path, write_record
from experiments.cli import main
from experiments.manifest import load_manifest
from lejepa import threads
from lejepa.checkpoint import CheckpointError

SOURCE = """\
name: tiny-source
defaults:
  data: {name: digits}
  model: {arch: resnet18, timm_kwargs: {channels: [8, 16, 32, 64]}, proj_hidden: 64, proj_dim: 16}
  method: {name: lejepa, lamb: 0.05, num_slices: 32}
  train: {max_steps: 4, batch_size: 32}
grid:
  seed: [0, 1]
"""

TRANSFER = """\
name: tiny-transfer
defaults:
  data: {name: digits}
  model: {arch: resnet18, timm_kwargs: {channels: [8, 16, 32, 64]}, proj_hidden: 64, proj_dim: 16, init_from: SOURCE}
  method: {name: lejepa, lamb: 0.05, num_slices: 32}
  train: {epochs: 0}
grid:
  seed: [1, 0]
"""


# ------------------------------------------------------------------------------ manifest resolution


def test_init_from_a_manifest_resolves_to_its_run_with_this_seed_method_and_model(tmp_path):
    source = load_manifest(write_manifest(tmp_path, name="source", text=SOURCE))
    transfer = load_manifest(write_manifest(tmp_path, name="transfer", text=TRANSFER.replace("SOURCE", str(tmp_path / "source.yaml"))))
    by_seed = {s.seed: s for s in source.runs}
    assert [s.model.init_from for s in transfer.runs] == [f"tiny-source/{by_seed[seed].run_id}" for seed in (1, 0)]
    # A method written with its defaults spelt out is the same method.
    spelt_out = TRANSFER.replace("num_slices: 32}", "num_slices: 32, knots: 17, t_max: 3.0}")
    again = load_manifest(write_manifest(tmp_path, name="again", text=spelt_out.replace("SOURCE", str(tmp_path / "source.yaml"))))
    assert [s.model.init_from for s in again.runs] == [s.model.init_from for s in transfer.runs]


def test_init_from_problems_name_the_key_and_the_fix(tmp_path):
    write_manifest(tmp_path, name="source", text=SOURCE)
    path = write_manifest(tmp_path, name="transfer", text=TRANSFER.replace("SOURCE", str(tmp_path / "source.yaml")))
    message = manifest_problems(path, ["train.epochs=10"])
    assert "defaults.model.init_from" in message and "set train.epochs: 0 (got 10)" in message
    message = manifest_problems(path, ["model.proj_dim=32"])
    assert "0 of its 2 runs have this run's seed, method and model" in message and "every model.* key" in message
    assert "set data.image_size: 16 (this run has 32)" in manifest_problems(path, ["data.image_size=32"])
    assert "neither EXPERIMENT/RUN_ID nor a manifest" in manifest_problems(path, ["model.init_from=nowhere"])
    explicit = load_manifest(path, ["model.init_from=elsewhere/lejepa-digits-resnet18-s0-0123456789"])
    assert {s.model.init_from for s in explicit.runs} == {"elsewhere/lejepa-digits-resnet18-s0-0123456789"}


def test_a_cycle_of_init_from_references_is_an_error_not_a_recursion(tmp_path):
    cyclic = TRANSFER.replace("name: tiny-transfer", "name: a").replace("SOURCE", str(tmp_path / "b.yaml"))
    write_manifest(tmp_path, name="a", text=cyclic)
    write_manifest(tmp_path, name="b", text=cyclic.replace("name: a", "name: b").replace(str(tmp_path / "b.yaml"), str(tmp_path / "a.yaml")))
    assert "model.init_from references form a cycle" in manifest_problems(tmp_path / "a.yaml")


def test_a_named_axis_sets_keys_of_several_sections_together(tmp_path):
    path = write_manifest(tmp_path, name="axes", text=SOURCE.replace("grid:\n  seed: [0, 1]\n", textwrap.dedent("""\
        grid:
          seed: [0, 1]
          setting:
            - {model.arch: resnet18, train.weight_decay: 5.0e-4, resources.time_min: 20}
            - {model.arch: vit_tiny_patch16_224, train.weight_decay: 5.0e-2}
        """)))
    runs = load_manifest(path).runs
    assert [(s.seed, s.model.arch, s.train.weight_decay, s.resources.time_min) for s in runs] == [
        (0, "resnet18", 5e-4, 20), (0, "vit_tiny_patch16_224", 5e-2, 60),
        (1, "resnet18", 5e-4, 20), (1, "vit_tiny_patch16_224", 5e-2, 60)]
    typo = path.read_text().replace("train.weight_decay: 5.0e-2", "train.weight_decy: 5.0e-2")
    assert "grid.setting[1].train.weight_decy: train has no key 'weight_decy'; did you mean weight_decay?" in manifest_problems(
        write_manifest(tmp_path, name="typo", text=typo))


def test_include_without_a_grid_runs_only_the_included_runs(tmp_path):
    text = SOURCE.replace("grid:\n  seed: [0, 1]\n", "include:\n  - {seed: 3}\n  - {seed: 4}\n")
    assert [s.seed for s in load_manifest(write_manifest(tmp_path, name="inc", text=text)).runs] == [3, 4]
    assert [s.seed for s in load_manifest(write_manifest(tmp_path, name="plain", text=SOURCE.split("grid:")[0])).runs] == [0]


# ------------------------------------------------------------------------------------- the job itself


def test_launch_refuses_transfer_runs_until_their_sources_are_done(tmp_path, capsys):
    """Queued before the source finished, a transfer run would wait in the queue only to fail."""
    write_manifest(tmp_path, name="source", text=SOURCE)
    path = write_manifest(tmp_path, name="transfer", text=TRANSFER.replace("SOURCE", str(tmp_path / "source.yaml")))
    results = tmp_path / "results"
    source_runs = load_manifest(tmp_path / "source.yaml").runs
    write_record(results, make_record(source_runs[0], "done"))  # seed 0 is done, seed 1 failed
    write_record(results, make_record(source_runs[1], "failed", reason="out of memory"))

    assert main(["launch", str(path), "--executor", "debug", "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert "1 source run(s) named by model.init_from are not done" in err and "Traceback" not in err
    assert f"tiny-source/{source_runs[1].run_id} (failed)" in err and source_runs[0].run_id not in err
    assert "Launch experiment(s) tiny-source first" in err
    assert not (results / "tiny-transfer").exists()  # no ledger, no logs, nothing queued

    broken = record_path(results, "tiny-source", source_runs[1].run_id)
    broken.write_text("{not json")  # a half-written or hand-edited record: refused, named, left as it was
    assert main(["launch", str(path), "--executor", "debug", "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert f"tiny-source/{source_runs[1].run_id} (unreadable)" in err and "Traceback" not in err
    assert broken.read_text() == "{not json" and not (results / "tiny-transfer").exists()


def _eval_numbers(record: dict) -> dict:
    evaluation, probes = record["evaluation"], record["evaluation"]["probes"]
    keys = ["feature_dim", "train_images", "test_images"]
    return {**{k: evaluation[k] for k in keys}, "linear": probes["linear"]["top1"],
            "knn": [probes["knn"]["top1@10"], probes["knn"]["top1@20"]], "few_shot": probes["few_shot"]["1"]["draws"]}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A model this small runs fastest on one thread (and a shared CI machine stays usable)."""
    with threads.one_thread():
        yield


@pytest.fixture(scope="module")
def finished_source(tmp_path_factory):
    """One tiny finished run (3 steps on 320 digits) whose weights the tests below evaluate again."""
    results = tmp_path_factory.mktemp("results")
    spec = make_tiny_spec(data={"train_limit": 320, "test_limit": 120}, train={"max_steps": 3},
                          eval={"few_shot": (1,), "few_shot_draws": 2})
    record = run_job(spec, results, progress=False)
    assert record["status"] == "done" and record["pretrain"]["steps"] == 3
    return results, spec, record


def transfer_of(source, **model_changes):
    model = dataclasses.replace(source.model, init_from=f"{source.experiment}/{source.run_id}", **model_changes)
    return dataclasses.replace(source, experiment="tiny-transfer", model=model,
                               train=dataclasses.replace(source.train, epochs=0))


def test_a_transfer_run_evaluates_the_sources_final_weights_and_records_where_from(finished_source):
    results, source, source_record = finished_source
    transfer = transfer_of(source)
    record = run_job(transfer, results, progress=False)
    assert record["status"] == "done" and record["pretrain"] == {}  # nothing was trained
    assert record["evaluation"]["transfer_from"] == {"dataset": "digits", "experiment": "tiny",
                                                      "run_id": source.run_id, "step": 3,
                                                      "pretrain_epochs": source.train.epochs}
    # The same weights on the same data under the same protocol: the very same numbers.
    assert _eval_numbers(record) == _eval_numbers(source_record)
    assert read_record(record_path(results, "tiny-transfer", transfer.run_id)) == record
    assert not (results / "tiny-transfer" / transfer.run_id / "ckpt").exists()


def test_a_transfer_run_fails_with_a_message_until_its_source_is_done(finished_source):
    results, source, _ = finished_source
    unfinished = transfer_of(dataclasses.replace(source, seed=5))  # no run of seed 5 was trained
    with pytest.raises(RuntimeError, match="the source run is not done"):
        run_job(unfinished, results, progress=False)
    failed = read_record(record_path(results, "tiny-transfer", unfinished.run_id))
    assert failed["status"] == "failed" and "Launch the manifest of experiment 'tiny' first" in failed["reason"]
    with pytest.raises(RuntimeError, match="cannot hold the source's weights: model: source"):
        run_job(transfer_of(source, proj_dim=32), results, progress=False)


def test_a_crafted_init_from_checkpoint_runs_nothing_and_the_run_fails_naming_it(tmp_path):
    """model.init_from loads another run's checkpoint: a crafted one there must not run code either."""
    source = make_tiny_spec()
    write_record(tmp_path, make_record(source, "done"))
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "tiny" / source.run_id / "ckpt" / "step_00000006.pt"
    write_crafted_checkpoint(crafted, marker, run_id=source.run_id, step=6)
    with pytest.warns(UserWarning, match="only code could rebuild"), \
            pytest.raises(CheckpointError, match=r"no readable checkpoint in .*step_00000006\.pt\.corrupt"):
        run_job(transfer_of(source), tmp_path, progress=False)
    assert not marker.exists()
    assert crafted.with_name("step_00000006.pt.corrupt").is_file()
    failed = read_record(record_path(tmp_path, "tiny-transfer", transfer_of(source).run_id))
    assert failed["status"] == "failed" and "step_00000006.pt.corrupt could not be loaded" in failed["reason"]
