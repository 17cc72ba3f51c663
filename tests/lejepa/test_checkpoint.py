"""Checkpoints: atomic, newest valid one wins, corrupt files are kept aside and named in errors."""

import pytest
import torch

from lejepa.checkpoint import CheckpointError, checkpoint_paths, load_latest_checkpoint, save_checkpoint


def _state(step, run_id="run"):
    return {"run_id": run_id, "step": step, "weights": torch.full((3,), float(step))}


def test_keeps_the_newest_two(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, _state(step))
    assert [p.name for p in checkpoint_paths(tmp_path)] == ["step_00000003.pt", "step_00000002.pt"]
    assert load_latest_checkpoint(tmp_path, "run")["step"] == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_newest_falls_back_to_older_and_is_kept(tmp_path):
    save_checkpoint(tmp_path, 1, _state(1))
    save_checkpoint(tmp_path, 2, _state(2))
    (tmp_path / "step_00000002.pt").write_bytes(b"\x00" * 100)  # e.g. a disk that filled up
    with pytest.warns(UserWarning, match="unreadable"):
        assert load_latest_checkpoint(tmp_path, "run")["step"] == 1
    assert (tmp_path / "step_00000002.pt.corrupt").read_bytes() == b"\x00" * 100


def test_only_corrupt_checkpoints_is_an_error_naming_them_and_the_fix(tmp_path):
    save_checkpoint(tmp_path, 4, _state(4))
    (tmp_path / "step_00000004.pt").write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="step_00000004.pt.corrupt.*move those files"):
        load_latest_checkpoint(tmp_path, "run")
    with pytest.raises(CheckpointError):  # and it stays an error on the next attempt: nothing silently restarts
        load_latest_checkpoint(tmp_path, "run")


def test_checkpoint_of_another_run_is_refused(tmp_path):
    save_checkpoint(tmp_path, 1, _state(1, run_id="other"))
    with pytest.raises(CheckpointError, match="belongs to run 'other'"):
        load_latest_checkpoint(tmp_path, "run")


def test_no_checkpoint_means_start_from_scratch(tmp_path):
    assert load_latest_checkpoint(tmp_path / "missing", "run") is None
