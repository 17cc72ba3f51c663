"""Live progress (slurm/progress.py): the line of a running run from its metrics.jsonl, the in-place and the
plain displays, and the ETA `lejepa status` gives from the running runs' speed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_tiny_spec

from evaluation.record import run_dir
from experiments.cli import main
from lejepa.train import pretrain
from slurm.progress import LiveLines, Progress, clock_text, progress_text, read_progress, run_line
from slurm.status import RunState, eta_estimate


def write_metrics(folder: Path, lines: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_a_real_run_logs_its_total_and_its_line_says_step_of_total(tmp_path):
    spec = make_tiny_spec(train={"max_steps": 4, "log_every": 2, "batch_size": 32})
    folder = run_dir(tmp_path, spec.experiment, spec.run_id)
    pretrain(spec, folder, progress=False)
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [(line["step"], line["total_steps"]) for line in lines] == [(2, 4), (4, 4)]
    progress = read_progress(tmp_path, spec)
    assert progress.step == 4 and progress.total_steps == 4 and progress.finished
    assert progress.loss == pytest.approx(lines[-1]["loss"])
    text = run_line(tmp_path, spec, running_for=5.0)
    assert text.startswith(f"{spec.run_id}: step 4/4, loss {lines[-1]['loss']:.4f}, ")
    assert text.endswith("img/s, pretraining done, evaluating")


def test_eta_is_steps_left_over_steps_per_second(tmp_path):
    spec = make_tiny_spec(train={"max_steps": 200, "batch_size": 32})
    write_metrics(run_dir(tmp_path, spec.experiment, spec.run_id), [
        {"step": 10, "total_steps": 200, "loss": 2.0, "images_per_second": 60.0, "elapsed": 5.0},
        {"step": 50, "total_steps": 200, "loss": 1.23456, "images_per_second": 64.0, "elapsed": 25.0},
    ])
    progress = read_progress(tmp_path, spec)
    assert progress.steps_per_second == pytest.approx(64.0 / 32)  # images/s over the batch size
    assert progress.seconds_left == pytest.approx((200 - 50) / 2.0)  # 75 s
    assert progress_text(progress) == "step 50/200, loss 1.2346, 64 img/s, ETA 1:15"
    # Without images/s the rate is steps over elapsed seconds; without a total there is no ETA.
    assert Progress(50, 200, None, None, 25.0, 32).seconds_left == pytest.approx(150 / 2.0)
    assert Progress(50, None, 1.0, 64.0, 25.0, 32).seconds_left is None
    assert progress_text(Progress(50, None, 1.0, 64.0, 25.0, 32)) == "step 50, loss 1.0000, 64 img/s"


def test_a_half_written_last_line_is_skipped_quietly(tmp_path, recwarn):
    spec = make_tiny_spec()
    folder = run_dir(tmp_path, spec.experiment, spec.run_id)
    write_metrics(folder, [{"step": 3, "total_steps": 6, "loss": 1.0, "images_per_second": 10.0, "elapsed": 9.0}])
    with open(folder / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "total_st')  # the trainer is writing this line right now
    assert read_progress(tmp_path, spec).step == 3
    assert not recwarn.list


def test_a_run_without_metrics_says_what_it_is_doing(tmp_path):
    assert run_line(tmp_path, make_tiny_spec(), 65.0).endswith(": starting (no training step logged yet), 1:05 so far")
    pixels = make_tiny_spec(method={"name": "raw_pixels"})
    assert run_line(tmp_path, pixels, 3.0).endswith(": evaluating (no pretraining), 3 s so far")
    assert [clock_text(s) for s in (0.4, 59, 61, 3723)] == ["0 s", "59 s", "1:01", "1:02:03"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_block_is_redrawn_in_place_and_cleared_before_messages():
    now = [0.0]
    terminal = FakeTerminal()
    live = LiveLines(terminal, tty_every=1.0, clock=lambda: now[0])
    assert live.show(["run-a: step 1/10", "run-b: starting"])
    assert terminal.getvalue() == "run-a: step 1/10\nrun-b: starting\n"
    now[0] = 0.5
    assert not live.due() and not live.show(["run-a: step 2/10"])  # at most once a second
    now[0] = 1.0
    assert live.show(["run-a: step 3/10", "run-b: step 1/5"])
    # the old block (2 lines) is erased: cursor to the start of the line 2 up, erase to the end of screen
    assert terminal.getvalue().endswith("\x1b[2F\x1b[Jrun-a: step 3/10\nrun-b: step 1/5\n")
    live.clear()
    assert terminal.getvalue().endswith("\x1b[2F\x1b[J")
    assert live.due()  # after a message the block comes back at once, below it
    live.clear()
    assert terminal.getvalue().count("\x1b[J") == 2  # nothing drawn, nothing erased


def test_plain_output_prints_lines_every_interval_and_never_escapes():
    now = [100.0]
    log = io.StringIO()
    live = LiveLines(log, plain_every=30.0, clock=lambda: now[0])
    assert not live.show(["run-a: step 1/10"])  # a log gets its first lines after one interval
    now[0] = 130.0
    assert live.show(["run-a: step 5/10"])
    now[0] = 140.0
    assert not live.show(["run-a: step 7/10"])
    live.clear()
    now[0] = 160.0
    assert live.show(["run-a: step 9/10", "run-b: starting"])
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 and all(line.startswith("progress ") for line in lines)
    assert [line.split(" ", 2)[2] for line in lines] == ["run-a: step 5/10", "run-a: step 9/10", "run-b: starting"]
    assert "\x1b" not in log.getvalue()


def state(spec, name, progress=None, seconds=None):
    return RunState(spec, name, "", seconds=seconds, progress=progress)


def test_status_eta_from_running_speed_and_finished_wall_times():
    spec = make_tiny_spec()
    running = Progress(50, 200, 1.0, 64.0, 25.0, 32)  # 150 steps left at 2 steps/s: 75 s
    text = eta_estimate([state(spec, "done", seconds=600.0), state(spec, "done", seconds=400.0),
                         state(spec, "running", running), state(spec, "pending"), state(spec, "pending")])
    # 75 s + 2 pending x 500 s mean / 1 at once = 1075 s
    assert text.startswith("ETA: about 18 min = 1 running run(s) end pretraining in 75 s at their measured speed")
    assert "2 pending run(s) x 8 min mean wall time (pretraining + evaluation, of 2 done run(s)) / 1 at once" in text
    only_running = eta_estimate([state(spec, "running", running), state(spec, "running")])
    assert only_running.startswith("ETA: about 75 s = 1 running run(s) end pretraining in 75 s")
    assert "not known: 1 running run(s) have no speed yet" in only_running
    assert eta_estimate([state(spec, "pending")]).startswith("ETA: unknown; not known: 1 pending run(s) until a run")
    assert eta_estimate([state(spec, "done", seconds=1.0)]) == "ETA: nothing left to run"


def test_status_command_shows_a_running_runs_step_and_eta(tmp_path, capsys):
    """A run whose folder a live process holds is running; its metrics give the step and the ETA."""
    manifest = tmp_path / "m.yaml"
    manifest.write_text("name: live\ndefaults:\n  data: {name: digits}\n  train: {batch_size: 32, max_steps: 200}\n")
    from experiments.manifest import load_manifest

    spec = load_manifest(manifest).runs[0]
    folder = run_dir(tmp_path, "live", spec.run_id)
    write_metrics(folder, [{"step": 50, "total_steps": 200, "loss": 0.5, "images_per_second": 64.0, "elapsed": 25.0}])
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from lejepa.run_lock import run_lock\n"
        f"with run_lock({str(folder)!r}):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["status", str(manifest), "--results", str(tmp_path)]) == 0
    finally:
        holder.kill()
        holder.wait()
    out = capsys.readouterr().out
    assert "step 50/200, loss 0.5000, 64 img/s, ETA 1:15" in out
    assert "ETA: about 75 s = 1 running run(s) end pretraining in 75 s at their measured speed" in out
