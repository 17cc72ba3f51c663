"""The one-run pipeline (evaluation/pipeline.py) against the failures of issue 16: a spec with no training
step, a record of a newer schema, a run folder held by another trainer, writes a kill cut short."""

import json
import subprocess
import sys

import pytest
from conftest import make_tiny_spec

from evaluation.pipeline import run_job
from evaluation.record import NewerSchema, make_record, read_record, record_path, write_record

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_run_without_a_training_step_is_recorded_failed_not_done(tmp_path):
    """train.epochs=0 passes the section's own range (transfer runs use it) but gives no step: the record
    must not put the untrained backbone's accuracy under the method's name."""
    spec = make_tiny_spec(train={"epochs": 0, "max_steps": None})
    with pytest.raises(ValueError, match="train.epochs=0 over 1437 images is no training step; raise train.epochs"):
        run_job(spec, tmp_path, progress=False)
    record = read_record(record_path(tmp_path, "tiny", spec.run_id))
    assert record["status"] == "failed" and record["evaluation"] == {} and "no training step" in record["reason"]


def test_a_record_of_a_newer_schema_is_never_overwritten(tmp_path):
    spec = make_tiny_spec()
    path = write_record(tmp_path, {**make_record(spec, "done"), "schema": 3, "new_field": [1, 2]})
    before = path.read_bytes()
    with pytest.raises(NewerSchema, match=r"result\.json has schema 3; this lejepa-bench reads up to 2"):
        run_job(spec, tmp_path, progress=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [".lock", "result.json"]  # nothing trained or written


def test_a_second_process_on_a_held_run_folder_writes_nothing(tmp_path):
    spec = make_tiny_spec()
    folder = tmp_path / "tiny" / spec.run_id
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from lejepa.run_lock import run_lock\n"
        f"with run_lock({str(folder)!r}):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_job(spec, tmp_path, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert result["status"] == "skipped"
    assert f"run folder {folder} is in use by pid {holder.pid} on " in result["reason"]
    assert [p.name for p in folder.iterdir()] == [".lock"]  # no spec.json, log, checkpoint or record


def test_writes_a_killed_attempt_left_half_done_are_removed_at_the_next_start(tmp_path):
    spec = make_tiny_spec()
    finished = {"probes": {"linear": {"top1": 0.5, "top5": None, "head": {}}}}
    write_record(tmp_path, make_record(spec, "done", evaluation=finished))
    folder = tmp_path / "tiny" / spec.run_id
    (folder / "features").mkdir()
    stale = [folder / ".result.json.a1b2c3.tmp", folder / ".metrics.jsonl.d4e5f6.tmp",
             folder / "features" / ".train.pt.g7h8i9.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    record = run_job(spec, tmp_path, progress=False)
    assert not any(path.exists() for path in stale)
    assert record["evaluation"] == finished  # the finished run's record, nothing retrained
    assert json.loads((folder / "result.json").read_text())["evaluation"] == finished
