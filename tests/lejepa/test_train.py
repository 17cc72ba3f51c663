"""Pretraining: resume after a kill is bit-identical; a non-finite loss stops the run as diverged."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_spec

from lejepa.checkpoint import checkpoint_paths
from lejepa.train import learning_rate, pretrain

REPO = Path(__file__).resolve().parents[2]


def _metrics(run_dir: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in ("images_per_second", "elapsed")} for line in lines]


def test_killed_run_resumes_to_the_same_numbers(tmp_path):
    spec = make_tiny_spec(train={"max_steps": 40, "checkpoint_every": 5})
    _, reference = pretrain(spec, tmp_path / "reference", progress=False)
    reference_state = torch.load(checkpoint_paths(tmp_path / "reference" / "ckpt")[0], weights_only=False)

    # A separate process is SIGKILLed (no chance to clean up) as soon as its first checkpoint lands.
    killed_dir = tmp_path / "killed"
    script = (
        "import json, sys; from lejepa.spec import RunSpec; from lejepa.train import pretrain; "
        f"pretrain(RunSpec.from_dict(json.loads(sys.argv[1])), {str(killed_dir)!r}, progress=False)"
    )
    child = subprocess.Popen([sys.executable, "-c", script, json.dumps(spec.to_dict())], cwd=REPO)
    deadline = time.time() + 900  # generous: a busy shared machine once took 415 s for this test
    while not checkpoint_paths(killed_dir / "ckpt") and time.time() < deadline and child.poll() is None:
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, "the child finished before it could be killed"
    assert checkpoint_paths(killed_dir / "ckpt")[0].name != "step_00000040.pt"

    _, resumed = pretrain(spec, killed_dir, progress=False)
    resumed_state = torch.load(checkpoint_paths(killed_dir / "ckpt")[0], weights_only=False)
    assert resumed.steps == reference.steps == 40
    assert resumed.final_loss == reference.final_loss
    assert resumed.final_parts == reference.final_parts
    for name, tensor in reference_state["model"].items():
        assert torch.equal(tensor, resumed_state["model"][name]), name
    assert _metrics(killed_dir) == _metrics(tmp_path / "reference")  # one uninterrupted-looking log


class Requeued(Exception):
    """What the stand-in for submitit's handler raises (submitit's requeues the job, then exits)."""


def test_preemption_signal_saves_the_step_in_flight_then_hands_over(tmp_path, monkeypatch):
    """submitit's handler for SIGUSR2 requeues and exits at once; pretrain holds the signal until the step
    in flight ends, writes a checkpoint there (not on the periodic schedule), then calls that handler. The
    resumed run loses no step and ends with the uninterrupted run's numbers."""
    spec = make_tiny_spec(train={"max_steps": 30, "checkpoint_every": 20})
    _, reference = pretrain(spec, tmp_path / "reference", progress=False)
    reference_state = torch.load(checkpoint_paths(tmp_path / "reference" / "ckpt")[0], weights_only=False)

    handed_over = []

    def submitit_stand_in(signum, frame):
        handed_over.append(signum)
        raise Requeued

    def learning_rate_then_signal(step, total_steps, run_spec):
        if step == 7:  # the signal lands in the middle of the 8th step
            os.kill(os.getpid(), signal.SIGUSR2)
        return learning_rate(step, total_steps, run_spec)

    run_dir = tmp_path / "preempted"
    previous = signal.signal(signal.SIGUSR2, submitit_stand_in)
    try:
        monkeypatch.setattr("lejepa.train.learning_rate", learning_rate_then_signal)
        with pytest.raises(Requeued):
            pretrain(spec, run_dir, progress=False)
        assert signal.getsignal(signal.SIGUSR2) is submitit_stand_in  # restored for submitit
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert handed_over == [signal.SIGUSR2]
    assert [p.name for p in checkpoint_paths(run_dir / "ckpt")] == ["step_00000008.pt"]
    assert [m["step"] for m in _metrics(run_dir)] == list(range(1, 9))

    monkeypatch.undo()
    _, resumed = pretrain(spec, run_dir, progress=False)
    resumed_state = torch.load(checkpoint_paths(run_dir / "ckpt")[0], weights_only=False)
    assert resumed.final_loss == reference.final_loss and resumed.final_parts == reference.final_parts
    for name, tensor in reference_state["model"].items():
        assert torch.equal(tensor, resumed_state["model"][name]), name
    assert _metrics(run_dir) == _metrics(tmp_path / "reference")


def test_preemption_signal_is_left_alone_outside_submitit(tmp_path):
    """With no Python handler installed (a plain `python` process), the signal keeps its default action."""
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL
    pretrain(make_tiny_spec(train={"max_steps": 2}), tmp_path, progress=False)
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL


def test_finished_run_is_not_trained_again(tmp_path):
    spec = make_tiny_spec(train={"max_steps": 3})
    _, first = pretrain(spec, tmp_path, progress=False)
    _, again = pretrain(spec, tmp_path, progress=False)
    assert again.steps == first.steps and again.final_loss == first.final_loss
    assert again.wall_seconds == first.wall_seconds  # nothing ran: the saved wall time is reported


def test_non_finite_loss_stops_as_diverged_without_saving_it(tmp_path):
    spec = make_tiny_spec(train={"max_steps": 30, "lr": 1e12, "warmup_fraction": 0.0, "checkpoint_every": 1})
    _, result = pretrain(spec, tmp_path, progress=False)
    assert result.status == "diverged"
    assert f"at step {result.steps}" in result.reason and "Lower train.lr" in result.reason
    for path in checkpoint_paths(tmp_path / "ckpt"):  # every checkpoint that exists holds finite weights
        state = torch.load(path, weights_only=False)
        assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
        assert int(path.stem.split("_")[1]) <= result.steps


def test_learning_rate_warms_up_then_decays_to_the_floor():
    spec = make_tiny_spec(train={"lr": 1.0, "warmup_fraction": 0.1, "min_lr_ratio": 1e-3})
    rates = [learning_rate(step, 100, spec) for step in range(100)]
    assert rates[0] == 0.1 and rates[9] == 1.0  # linear over the first 10 steps
    assert all(a >= b for a, b in itertools.pairwise(rates[9:]))  # then monotone cosine
    assert abs(learning_rate(100, 100, spec) - 1e-3) < 1e-12
