"""One bad file does not block a study, and a record counts only for its own run (issue 16, cases 5 and 6).

Each command meets the damaged file through the real CLI (`experiments.cli.main`): it must name the file,
go on with the rest, exit as usual and never print a traceback. Records here are written as a finished
job writes them, for the manifest's own runs; nothing is trained.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import write_manifest

from evaluation.record import make_record, read_records, record_path, write_record
from experiments.cli import main
from experiments.manifest import load_manifest
from lejepa.spec import RunSpec
from slurm.ledger import ledger_path, read_ledger

STUDY = """\
name: study
defaults:
  data: {name: digits}
  model: {arch: resnet18, timm_kwargs: {channels: [8, 16, 32, 64]}, proj_hidden: 64, proj_dim: 16}
  train: {max_steps: 4, batch_size: 32}
  method: {name: lejepa, lamb: 0.05, num_slices: 32}
grid:
  seed: [0, 1]
"""


def _finished(results: Path, spec: RunSpec, linear: float = 0.8) -> Path:
    return write_record(results, make_record(
        spec, "done", pretrain={"status": "done", "steps": 4, "epochs": 0.09, "wall_seconds": 30.0,
                                "images_per_second": 5.0, "final_loss": 1.0, "final_parts": {}},
        evaluation={"linear_top1": linear, "linear_top5": 0.95, "knn_top1@10": 0.7, "knn_top1@20": 0.7,
                    "wall_seconds": 5.0}, env={"device": "cpu", "world_size": 1}))


@pytest.fixture
def study(tmp_path) -> tuple[Path, Path, list[RunSpec]]:
    """A two-run manifest with both runs done."""
    path, results = write_manifest(tmp_path, STUDY), tmp_path / "results"
    specs = list(load_manifest(path).runs)
    for spec, linear in zip(specs, (0.8, 0.9)):
        _finished(results, spec, linear)
    return path, results, specs


def _row(out: str, run_id: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(run_id))


def _console_n(out: str) -> int:
    """The n column of the report's one-group console table."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    cells = dict(zip(re.split(r"\s{2,}", lines[header].strip()), re.split(r"\s{2,}", lines[header + 2].strip())))
    return int(cells["n"])


DAMAGE = {"truncated": '{"schema": 1, "run_id": "lejepa-dig', "a list": "[]", "null": "null"}


@pytest.mark.parametrize("text", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_bad_record_is_named_and_every_command_goes_on(study, capsys, text):
    path, results, specs = study
    bad = record_path(results, "study", specs[0].run_id)
    bad.write_text(text)
    args = [str(path), "--results", str(results)]

    assert main(["report", *args]) == 0
    out, err = capsys.readouterr()
    assert f"left out: {bad}: " in out and "1 of 2 runs have records" in out and _console_n(out) == 1
    assert main(["status", *args]) == 0
    out, err = capsys.readouterr()
    assert _row(out, specs[0].run_id).split()[1] == "failed" and f"record unusable: {bad}: " in out
    assert _row(out, specs[1].run_id).split()[1] == "done"
    assert main(["launch", *args, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "2 runs (1 to run, 1 done, 0 queued/running)" in out
    assert f"record does not count, the run would go again (a launch sets the file aside, kept): {bad}: " in out
    assert "Traceback" not in out + err and bad.read_text() == text  # named, left as it was


def _stand_in_job(spec: RunSpec, results_root, progress: bool = True) -> dict:
    """What a finished job leaves (the launch machinery is under test here, not the training)."""
    return json.loads(_finished(Path(results_root), spec).read_text())


@pytest.mark.parametrize("text", ["{not json", "[]", '{"runs": {"RUN_0": 5}, "launches": []}'],
                         ids=["truncated", "a list", "bad entry"])
def test_a_damaged_ledger_does_not_block_launch_or_status(study, capsys, monkeypatch, one_thread, text):
    path, results, specs = study
    record_path(results, "study", specs[1].run_id).unlink()  # one run left to launch
    text = text.replace("RUN_0", specs[0].run_id)
    ledger = ledger_path(results, "study")
    ledger.write_text(text)
    args = [str(path), "--results", str(results)]

    with pytest.warns(UserWarning, match=f"{ledger} is unreadable"):
        assert main(["status", *args]) == 0
    assert "counts: done 1, pending 1" in capsys.readouterr().out

    monkeypatch.setattr("evaluation.pipeline.run_job", _stand_in_job)
    with pytest.warns(UserWarning, match=f"{ledger} could not be read: kept as launch.json.corrupt"):
        assert main(["launch", *args, "--executor", "debug"]) == 0
    assert "1 run(s) submitted with the debug executor, 1 already done" in capsys.readouterr().out
    assert ledger.with_name("launch.json.corrupt").read_text() == text
    assert list(read_ledger(results, "study")["runs"]) == [specs[1].run_id]


def test_a_record_of_a_newer_schema_is_left_alone_and_said_so(study, capsys):
    path, results, specs = study
    newer = record_path(results, "study", specs[0].run_id)
    newer.write_text(json.dumps({**json.loads(newer.read_text()), "schema": 3}))
    before = newer.read_bytes()
    args = [str(path), "--results", str(results)]

    assert main(["launch", *args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "newer record (skip)" in _row(out, specs[0].run_id) and "2 runs (0 to run, 1 done" in out
    assert f"not run: {newer} has schema 3; this lejepa-bench reads up to 2" in out
    assert main(["launch", *args, "--executor", "debug"]) == 0
    assert "0 run(s) submitted" in capsys.readouterr().out
    assert main(["run", *args, "--only", specs[0].run_id]) == 1
    assert f"not run: {newer} has schema 3" in capsys.readouterr().err
    assert main(["status", *args]) == 0
    assert _row(capsys.readouterr().out, specs[0].run_id).split()[1] == "unknown"
    assert newer.read_bytes() == before


# ---------------------------------------------------------------- records checked against folder and spec


def test_a_linked_or_copied_run_folder_is_counted_once(study, capsys):
    path, results, specs = study
    folder = results / "study" / specs[0].run_id
    os.symlink(folder, results / "study" / "linked-run")
    shutil.copytree(folder, results / "study" / f"{specs[0].run_id}-copy")

    assert main(["report", str(path), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert _console_n(out) == 2 and "2 of 2 runs have records" in out
    assert f"left out: {results / 'study' / 'linked-run' / 'result.json'}: belongs to run {specs[0].run_id}" in out
    records, problems = read_records(results, "study")
    assert sorted(r["run_id"] for r in records) == sorted(s.run_id for s in specs)
    assert len(problems) == 2 and all(f"belongs to run {specs[0].run_id}" in p for p in problems)


def test_another_runs_record_in_a_folder_does_not_make_launch_skip_the_run(study, capsys):
    path, results, specs = study
    foreign = record_path(results, "study", specs[1].run_id)
    shutil.copy(record_path(results, "study", specs[0].run_id), foreign)  # run 0's record in run 1's folder
    args = [str(path), "--results", str(results)]

    assert main(["launch", *args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 runs (1 to run, 1 done, 0 queued/running)" in out
    assert "to run (record unusable)" in _row(out, specs[1].run_id)
    assert f"{foreign}: belongs to run {specs[0].run_id} (spec {specs[0].run_id}), not {specs[1].run_id}" in out
    assert main(["status", *args]) == 0
    assert _row(capsys.readouterr().out, specs[1].run_id).split()[1] == "failed"
