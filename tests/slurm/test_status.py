"""`lejepa status` on a job that ended without a record: the cause its log gives, not just its last line
(issue 16, case 8). The log lines are SLURM's and the kernel's own wording."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import write_manifest

from experiments.cli import main
from experiments.manifest import load_manifest
from slurm.ledger import update_ledger

ONE_RUN = """\
name: ended
defaults:
  data: {name: digits}
  model: {arch: resnet18, timm_kwargs: {channels: [8, 16, 32, 64]}, proj_hidden: 64, proj_dim: 16}
"""
PROGRESS = "lejepa-digits-resnet18-s0:  40%|####      | 1600/4000 [10:02<15:03,  2.66it/s, loss=0.8123]"

ENDINGS = [
    ("slurmstepd: error: Detected 1 oom_kill event in StepId=4242.0. Some of the step tasks have been OOM Killed.",
     "killed for using too much memory (raise resources.mem_gb)"),
    (("slurmstepd: error: Detected 1 oom-kill event(s) in StepId=4242.batch. Some of your processes may have been "
      "killed by the cgroup out-of-memory handler."), "killed for using too much memory (raise resources.mem_gb)"),
    ("slurmstepd: error: *** JOB 4242 ON node1 CANCELLED AT 2026-01-01T10:00:00 DUE TO TIME LIMIT ***",
     "stopped at its time limit (raise resources.time_min)"),
    ("slurmstepd: error: *** JOB 4242 ON node1 CANCELLED AT 2026-01-01T10:00:00 ***", "cancelled (scancel)"),
    ("slurmstepd: error: *** JOB 4242 ON node1 CANCELLED AT 2026-01-01T10:00:00 DUE TO NODE FAILURE ***",
     "its node failed (relaunch to resume from the newest checkpoint)"),
]


@pytest.mark.parametrize("line, cause", ENDINGS, ids=["oom_kill", "cgroup oom", "time limit", "scancel", "node"])
def test_a_job_killed_from_outside_is_reported_by_its_cause(tmp_path, capsys, line, cause):
    path = write_manifest(tmp_path, ONE_RUN)
    (spec,) = load_manifest(path).runs
    log = tmp_path / "4242_0_log.err"
    log.write_text(f"lejepa: run {spec.run_id} attempt 1\n{line}\n{PROGRESS}\n")  # progress printed after it
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    update_ledger(tmp_path, "ended", {spec.run_id: {"job_id": str(dead.pid), "executor": "local", "stderr": str(log),
                                                   "stdout": str(log), "host": os.uname().nodename}})
    assert main(["status", str(path), "--results", str(tmp_path)]) == 0
    row = next(text for text in capsys.readouterr().out.splitlines() if text.startswith(spec.run_id))
    assert row.split()[1] == "failed"
    assert f"job {dead.pid} ended without a record: {cause}; last log line: {PROGRESS[:40]}" in row
    assert f"(log {log})" in row


def test_a_cuda_out_of_memory_crash_is_not_taken_for_a_memory_kill(tmp_path):
    from slurm.status import ended_without_record

    log = tmp_path / "job.err"
    log.write_text("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
    assert ended_without_record(str(log)) == ("it crashed or was killed before writing one; last log line: "
                                              "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
