"""Checkpoints: atomic, newest valid one wins, corrupt files are kept aside and named in errors."""

import pytest
import torch
from conftest import write_crafted_checkpoint

from lejepa.checkpoint import CheckpointError, checkpoint_paths, load_latest_checkpoint, save_checkpoint
from lejepa.files import DiskFull


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


def test_background_writer_saves_a_snapshot_not_the_live_tensors(tmp_path):
    """The step after save() may change the weights while the file is written: the file holds the values
    at save time."""
    from lejepa.checkpoint import CheckpointWriter

    weights = torch.zeros(1000)
    writer = CheckpointWriter(tmp_path)
    writer.save(1, {"run_id": "run", "step": 1, "model": {"w": weights}})
    weights.add_(1.0)  # training goes on
    writer.wait()
    assert torch.equal(load_latest_checkpoint(tmp_path, "run")["model"]["w"], torch.zeros(1000))


def test_background_writer_hands_a_failed_write_to_the_training_thread(tmp_path, monkeypatch):
    import errno

    from lejepa import checkpoint
    from lejepa.files import DiskFull

    def full(path, write):
        raise DiskFull(errno.ENOSPC, f"no space left to write {path}")

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", full)
    writer = checkpoint.CheckpointWriter(tmp_path)
    writer.save(1, {"run_id": "run", "step": 1})
    with pytest.raises(DiskFull, match="no space left"):
        writer.wait()


def test_final_weights_come_from_the_export_else_the_newest_checkpoint(tmp_path):
    from lejepa.checkpoint import export_weights, load_final_weights

    save_checkpoint(tmp_path / "ckpt", 4, {"run_id": "run", "step": 4, "model": {"w": torch.ones(2)},
                                          "optimizer": {"big": torch.ones(10)}})
    assert load_final_weights(tmp_path, "run")["step"] == 4  # a run from before the export existed
    export_weights(tmp_path, "run", 5, {"w": torch.full((2,), 5.0)})
    final = load_final_weights(tmp_path, "run")
    assert final["step"] == 5 and torch.equal(final["model"]["w"], torch.full((2,), 5.0)) and "optimizer" not in final


# ------------------------------------------------------------------------- hostile and damaged files (issue 16)


def test_a_crafted_checkpoint_runs_nothing_and_is_set_aside_by_name(tmp_path):
    marker = tmp_path / "code-ran"
    save_checkpoint(tmp_path / "ckpt", 2, _state(2))
    crafted = tmp_path / "ckpt" / "step_00000003.pt"
    write_crafted_checkpoint(crafted, marker)
    with pytest.warns(UserWarning, match=r"checkpoint .*step_00000003\.pt is unreadable \(it holds Python objects "
                                         r"that only code could rebuild.*GLOBAL posix\.system.*refused without "
                                         r"running anything.*kept as step_00000003\.pt\.corrupt"):
        assert load_latest_checkpoint(tmp_path / "ckpt", "run")["step"] == 2
    assert not marker.exists()
    assert (tmp_path / "ckpt" / "step_00000003.pt.corrupt").is_file()


def test_a_second_corrupt_checkpoint_keeps_the_first_copy(tmp_path):
    for content in (b"first bad write", b"second bad write"):
        save_checkpoint(tmp_path, 1, _state(1))
        save_checkpoint(tmp_path, 2, _state(2))
        (tmp_path / "step_00000002.pt").write_bytes(content)
        with pytest.warns(UserWarning, match="unreadable"):
            assert load_latest_checkpoint(tmp_path, "run")["step"] == 1
    assert (tmp_path / "step_00000002.pt.corrupt").read_bytes() == b"first bad write"
    assert (tmp_path / "step_00000002.pt.corrupt-2").read_bytes() == b"second bad write"


def test_an_interrupted_write_leaves_no_temporary_file_after_the_resume(tmp_path):
    save_checkpoint(tmp_path, 2, _state(2))
    stale = tmp_path / ".step_00000004.pt.k3j2h1.tmp"  # a job killed between write and rename
    stale.write_bytes(b"half a checkpoint")
    assert load_latest_checkpoint(tmp_path, "run")["step"] == 2
    assert not stale.exists() and [p.name for p in tmp_path.iterdir()] == ["step_00000002.pt"]


def test_a_full_disk_during_torch_save_is_named_and_loses_nothing(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 2, _state(2))
    before = (tmp_path / "step_00000002.pt").read_bytes()

    def disk_full(obj, f, *args, **kwargs):  # what torch.save raises when a write hits ENOSPC
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0: file write failed")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(DiskFull, match=r"no space left to write .*step_00000004\.pt \(\d+ MiB free on its disk\); "
                                       r"nothing was lost.*Free space .*then relaunch to continue"):
        save_checkpoint(tmp_path, 4, _state(4))
    assert [p.name for p in tmp_path.iterdir()] == ["step_00000002.pt"]  # no temporary file left behind
    assert (tmp_path / "step_00000002.pt").read_bytes() == before
