"""One trainer per run (issue 16, case 4): two launches of one manifest at once train each run once; a run
whose folder a live process holds is never started again (`lejepa run`, a relaunch, --force); liveness is
that lock, not a PID in the ledger, so an orphaned worker counts and a reused PID does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_launcher import TINY_MANIFEST, snapshot, write_manifest

import slurm.launch
from evaluation.record import make_record, read_record, record_path, write_record
from experiments.cli import main
from experiments.manifest import load_manifest
from slurm.ledger import update_ledger
from slurm.plan import plan_launch

ONE_RUN = TINY_MANIFEST.replace("seed: [0, 1]", "seed: [0]")


def _hold_lock(folder: Path) -> subprocess.Popen:
    """Another process (a trainer, or an orphaned worker) holding the run folder's lock."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from lejepa.run_lock import run_lock\n"
        f"with run_lock({str(folder)!r}):\n    print('held', flush=True); time.sleep(120)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _local_entry(job_id: int, log: Path) -> dict:
    return {"job_id": str(job_id), "executor": "local", "host": os.uname().nodename, "stdout": str(log),
            "stderr": str(log), "submitted": "2026-01-01T00:00:00+00:00"}


def _metrics_steps(folder: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _numbers(record: dict) -> dict:
    probes = record["evaluation"]["probes"]
    return {"steps": record["pretrain"]["steps"], "loss": record["pretrain"]["final_loss"],
            "linear": probes["linear"]["top1"], "knn": [probes["knn"]["top1@10"], probes["knn"]["top1@20"]]}


@pytest.mark.slow
def test_two_launches_of_one_manifest_at_once_train_each_run_once(tmp_path, capsys, monkeypatch, one_thread):
    """Both launches decide what to run before either submits anything (a barrier after planning), so
    each plans both runs and starts the same first run: only the lock can keep it to one trainer."""
    path, results = write_manifest(tmp_path), tmp_path / "results"
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # resources.cpus_per_task decides, in every job
    barrier, plan = threading.Barrier(2, timeout=300), slurm.launch.plan_launch

    def plan_then_wait(*args, **kwargs):
        decided = plan(*args, **kwargs)
        barrier.wait()
        return decided

    monkeypatch.setattr("slurm.launch.plan_launch", plan_then_wait)
    codes = []
    launches = [threading.Thread(target=lambda: codes.append(main(["launch", str(path), "--results", str(results)])))
                for _ in range(2)]
    launches[0].start()
    deadline = time.monotonic() + 300
    while barrier.n_waiting < 1 and time.monotonic() < deadline:  # the second starts once the first has
        time.sleep(0.05)  # planned, and plans before the first submits anything
    launches[1].start()
    for launch in launches:
        launch.join(900)
    out = capsys.readouterr().out
    assert codes == [0, 0], out
    assert out.count("2 run(s) submitted with the local executor") == 2  # both meant to run both runs

    # The same manifest launched once, alone (in this process: the same one thread per run).
    monkeypatch.setattr("slurm.launch.plan_launch", plan)
    alone = tmp_path / "alone"
    assert main(["launch", str(path), "--executor", "debug", "--results", str(alone)]) == 0
    capsys.readouterr()
    for spec in load_manifest(path).runs:
        folder = results / "launcher" / spec.run_id
        assert _metrics_steps(folder) == [1, 2, 3, 4]  # one trainer: no duplicated or out-of-order lines
        assert sorted(p.name for p in folder.iterdir() if "result" in p.name or "replaced" in p.name) == ["result.json"]
        record = read_record(record_path(results, "launcher", spec.run_id))
        assert record["status"] == "done"
        assert _numbers(record) == _numbers(read_record(record_path(alone, "launcher", spec.run_id)))


def test_lejepa_run_on_a_held_run_refuses_naming_the_holder_and_moves_nothing(tmp_path, capsys, one_thread):
    path = write_manifest(tmp_path, ONE_RUN)
    (spec,) = load_manifest(path).runs
    folder = tmp_path / "launcher" / spec.run_id
    holder = _hold_lock(folder)
    args = [str(path), "--only", spec.run_id, "--results", str(tmp_path)]
    try:
        assert main(["run", *args]) == 1  # a first attempt is training: not a second trainer beside it
        err = capsys.readouterr().err
        assert f"{spec.run_id} is being trained now by pid {holder.pid} on " in err and "not started again" in err
        assert [p.name for p in folder.iterdir()] == [".lock"]

        write_record(tmp_path, make_record(spec, "done", evaluation={"linear_top1": 0.5}))  # a rerun is training
        before = snapshot(folder)
        assert main(["run", *args, "--force"]) == 1
        assert f"{spec.run_id} is being trained now by pid {holder.pid} on " in capsys.readouterr().err
        assert snapshot(folder) == before  # --force did not move the live trainer's files away
    finally:
        holder.kill()
        holder.wait()


def test_an_orphaned_worker_shows_as_running_and_is_not_relaunched_even_with_force(tmp_path, capsys):
    """The launcher that started it is gone (its ledger PID is dead), but the worker still trains."""
    path = write_manifest(tmp_path, ONE_RUN)
    (spec,) = load_manifest(path).runs
    log = tmp_path / "job.err"
    log.write_text("step 3/4\n")
    update_ledger(tmp_path, "launcher", {spec.run_id: _local_entry(_dead_pid(), log)}, {"executor": "local"})
    folder = tmp_path / "launcher" / spec.run_id
    holder = _hold_lock(folder)
    args = [str(path), "--results", str(tmp_path)]
    try:
        assert main(["status", *args]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(spec.run_id))
        assert row.split()[1] == "running" and f"trained by pid {holder.pid} on" in row

        assert main(["launch", *args, "--dry-run"]) == 0
        assert "running (skip)" in capsys.readouterr().out
        before = snapshot(tmp_path)
        assert main(["launch", *args, "--force", "--executor", "debug"]) == 0
        assert "0 run(s) submitted with the debug executor, 0 already done (skipped), 1 still queued or running" \
            in capsys.readouterr().out
        assert snapshot(tmp_path) == before  # nothing moved aside, nothing started
    finally:
        holder.kill()
        holder.wait()


def test_a_reused_pid_in_the_ledger_does_not_make_a_run_live(tmp_path, capsys):
    """The ledger's job id is a live process that is not training the run (here: this test's own PID)."""
    path = write_manifest(tmp_path, ONE_RUN)
    manifest = load_manifest(path)
    (spec,) = manifest.runs
    log = tmp_path / "job.err"
    log.write_text("lejepa: run started\n")
    update_ledger(tmp_path, "launcher", {spec.run_id: _local_entry(os.getpid(), log)}, {"executor": "local"})
    args = [str(path), "--results", str(tmp_path)]
    assert main(["status", *args]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(spec.run_id))
    assert row.split()[1] == "failed" and f"job {os.getpid()} ended without a record" in row
    assert main(["launch", *args, "--dry-run"]) == 0
    assert "1 runs (1 to run, 0 done, 0 queued/running)" in capsys.readouterr().out
    assert plan_launch(manifest.name, list(manifest.runs), tmp_path, force=True).to_run == [spec]
