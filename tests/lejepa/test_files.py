"""Files the suite writes (lejepa/files.py): modes from the umask, so a shared results folder stays
readable to the group, and a full disk said in words with nothing lost (issue 16, case 8)."""

import errno
import os
import stat

import pytest
import torch
from conftest import make_tiny_spec

from evaluation.features import cached
from evaluation.record import make_record, write_record
from lejepa.checkpoint import save_checkpoint
from lejepa.files import DiskFull, atomic_write_text
from lejepa.metrics_log import MetricsLog
from slurm.ledger import ledger_path, update_ledger


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    before = os.umask(0o022)
    yield set_mask
    os.umask(before)


def _write_every_kind(root):
    """A record, a checkpoint, the ledger, a rewritten metrics log and a feature cache; their paths."""
    spec = make_tiny_spec()
    record = write_record(root, make_record(spec, "done"))
    checkpoint = save_checkpoint(root / "ckpt", 3, {"run_id": spec.run_id, "step": 3})
    update_ledger(root, "tiny", {spec.run_id: {"job_id": "1", "executor": "local"}})
    log = MetricsLog(root / "metrics.jsonl")
    log.append({"step": 1, "loss": 1.0})
    log.truncate_after(1)
    cached(root / "train.pt", "key", lambda: (torch.zeros(2, 3), torch.zeros(2)))
    return [record, checkpoint, ledger_path(root, "tiny"), root / "metrics.jsonl", root / "train.pt"]


@pytest.mark.parametrize("mask, mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_files_get_the_mode_the_umask_allows(tmp_path, umask, mask, mode):
    umask(mask)
    for path in _write_every_kind(tmp_path):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_a_full_disk_is_said_in_words_and_the_previous_file_is_intact(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    atomic_write_text(path, "previous")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DiskFull, match=rf"no space left to write {path} \(\d+ MiB free on its disk\); nothing was "
                                       r"lost: the previous result.json, if any, is intact\. Free space"):
        atomic_write_text(path, "new")
    assert path.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["result.json"]
