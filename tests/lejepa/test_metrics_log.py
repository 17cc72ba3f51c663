"""metrics.jsonl after a write cut short (a crash or a full disk mid-append): the run resumes, and the log
reads as one uninterrupted run (issue 16, case 1)."""

import errno
import io
import json
import shutil
from pathlib import Path

import pytest
from conftest import make_tiny_spec

from lejepa.checkpoint import checkpoint_paths
from lejepa.files import DiskFull
from lejepa.metrics_log import MetricsLog
from lejepa.threads import one_thread
from lejepa.train import pretrain

SPEC = make_tiny_spec(train={"max_steps": 6, "checkpoint_every": 3, "log_every": 1})
TIMING = ("images_per_second", "elapsed")
pytestmark = pytest.mark.usefixtures("one_thread")


def _log(run_dir: Path) -> list[dict]:
    """The log's lines without their timings; fails on any line that is not whole JSON."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in TIMING} for line in lines]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, float]:
    """The uninterrupted run, on one thread as the tests (a module fixture cannot use `one_thread`)."""
    run_dir = tmp_path_factory.mktemp("reference")
    with one_thread():
        _, result = pretrain(SPEC, run_dir, progress=False)
    return run_dir, result.final_loss


def test_a_partial_last_line_does_not_block_the_resume(reference, tmp_path):
    """A crash after step 5's line was half written, with step 3's checkpoint the newest."""
    reference_dir, final_loss = reference
    run_dir = tmp_path / "run"
    shutil.copytree(reference_dir, run_dir)
    checkpoint_paths(run_dir / "ckpt")[0].unlink()  # step 6's: the crash came before it
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (run_dir / "metrics.jsonl").write_text("\n".join(lines[:4]) + "\n" + lines[4][:17])

    with pytest.warns(UserWarning, match=r"metrics\.jsonl:5: skipped a damaged line"):
        _, result = pretrain(SPEC, run_dir, progress=False)
    assert result.steps == 6 and result.final_loss == final_loss
    assert _log(run_dir) == _log(reference_dir)


def test_a_restart_from_step_zero_does_not_append_onto_a_partial_line(reference, tmp_path):
    """No checkpoint yet, and the killed attempt left half of its first line."""
    reference_dir, final_loss = reference
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "epoch": 0.0')

    with pytest.warns(UserWarning, match="skipped a damaged line"):
        _, result = pretrain(SPEC, run_dir, progress=False)
    assert result.final_loss == final_loss
    assert _log(run_dir) == _log(reference_dir)


def test_a_full_disk_while_appending_names_the_log(tmp_path, monkeypatch):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.append({"step": 1, "loss": 1.0})

    class FullDisk(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("lejepa.metrics_log.open", lambda *args: FullDisk(), raising=False)
    with pytest.raises(DiskFull, match=rf"no space left to append to {tmp_path / 'metrics.jsonl'}; free space"):
        log.append({"step": 2, "loss": 0.5})
