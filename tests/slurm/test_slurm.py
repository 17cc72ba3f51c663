"""The launcher against a real SLURM cluster: one node on this machine, started by
slurm/start_local_cluster.sh. Job arrays, skip on relaunch, and preemption: a job
requeued with `scontrol requeue` mid-training resumes from its checkpoint and ends with the same record
as an uninterrupted run; a job sent submitit's preemption signal (SIGUSR2) saves the step in flight,
requeues itself and resumes from exactly there. Nothing here asks sacct (no accounting database)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from evaluation.record import read_record, record_path
from experiments.cli import main
from experiments.manifest import Manifest, load_manifest
from lejepa.checkpoint import checkpoint_paths
from lejepa.spec import RunSpec
from slurm.ledger import read_ledger
from slurm.status import collect_status

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
FINISHED = {"done", "failed", "diverged"}

MANIFEST = """\
name: {name}
defaults:
  data: {{name: digits{data}}}
  model: {{arch: resnet18, timm_kwargs: {{channels: [8, 16, 32, 64]}}, proj_hidden: 64, proj_dim: 16}}
  views: {{global_views: 2, local_views: 2}}
  train: {{max_steps: {steps}, batch_size: 32, checkpoint_every: {every}, log_every: 1}}
  eval: {{linear_epochs: 3, knn_k: [10, 20], linear_lrs: [1.0e-3, 1.0e-2]}}
  method: {{name: lejepa, lamb: 0.05, num_slices: 32}}
  resources: {{cpus_per_task: 1, mem_gb: 2, time_min: 10}}
grid:
  seed: {seeds}
"""


def write_slurm_manifest(folder: Path, name: str, *, steps: int, every: int, seeds: list[int], data: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(MANIFEST.format(name=name, steps=steps, every=every, seeds=seeds, data=data))
    return path


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The one-node cluster, started (or found running) by the repository's own script."""
    if os.geteuid() != 0:
        pytest.skip("starting the local SLURM cluster needs root (slurm/start_local_cluster.sh writes "
                    "/etc/slurm and starts munged, slurmctld, slurmd)")
    if shutil.which("sbatch") is None:
        pytest.skip("SLURM is not installed (sbatch not on PATH): apt-get install slurm-wlm munge, as install.sh does")
    started = subprocess.run(["bash", str(REPO / "slurm" / "start_local_cluster.sh")], check=False,
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, f"the local SLURM cluster did not start:\n{started.stdout}{started.stderr}"
    return started.stdout


def _squeue() -> str:
    return subprocess.run(["squeue", "-r", "-o", "%i %j %T %r"], check=False, capture_output=True, text=True).stdout


def wait_until_finished(manifest: Manifest, results: Path, timeout: float) -> list:
    """Poll `lejepa status`'s view (records first, else squeue) until every run has finished."""
    deadline = time.time() + timeout
    while True:
        states = collect_status(manifest.name, list(manifest.runs), results)
        if all(s.state in FINISHED for s in states):
            return states
        if time.time() > deadline:
            logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted((results / manifest.name / "logs")
                                                                            .glob("*_log.*")))
            pytest.fail(f"runs not finished after {timeout:.0f} s: {[(s.spec.run_id, s.state, s.detail) for s in states]}"
                        f"\nsqueue:\n{_squeue()}\n{logs}")
        time.sleep(1)


def test_job_array_finishes_and_relaunch_submits_nothing(slurm_cluster, tmp_path, capsys):
    path = write_slurm_manifest(tmp_path, "slurm-array", steps=4, every=2, seeds=[0, 1, 2, 3],
                          data=", train_limit: 256, test_limit: 100")
    results = tmp_path / "results"
    manifest = load_manifest(path)
    args = [str(path), "--results", str(results)]

    assert main(["launch", *args, "--executor", "slurm"]) == 0
    out = capsys.readouterr().out
    assert "4 run(s) submitted with the slurm executor" in out
    runs = read_ledger(results, manifest.name)["runs"]
    job_ids = sorted(runs[spec.run_id]["job_id"] for spec in manifest.runs)
    array = job_ids[0].split("_")[0]
    assert job_ids == [f"{array}_{task}" for task in range(4)]  # one job array, one task per run
    assert f"submitted job array {array} (4 tasks)" in out
    script = (results / manifest.name / "logs" / f"{array}_submission.sh").read_text()
    assert "#SBATCH --array=0-3" in script and "#SBATCH --cpus-per-task=1" in script
    assert "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}" in script

    states = wait_until_finished(manifest, results, timeout=240)
    assert [s.state for s in states] == ["done"] * 4, [(s.state, s.detail) for s in states]
    for spec in manifest.runs:
        record = read_record(record_path(results, manifest.name, spec.run_id))
        assert record["spec"] == spec.to_dict() and record["pretrain"]["steps"] == 4
        log = Path(runs[spec.run_id]["stdout"]).read_text()  # torch used the job's one CPU, not the node's
        assert f"run {spec.run_id} attempt 1 on" in log and "with 1 CPU thread(s)" in log

    assert main(["status", *args]) == 0
    out = capsys.readouterr().out
    assert "counts: done 4" in out and "ETA: nothing left to run" in out

    ledger_before = (results / manifest.name / "launch.json").read_bytes()
    assert main(["launch", *args, "--executor", "slurm"]) == 0
    assert "0 run(s) submitted with the slurm executor, 4 already done (skipped)" in capsys.readouterr().out
    assert (results / manifest.name / "launch.json").read_bytes() == ledger_before
    assert "lejepa-slurm-array" not in _squeue()


def test_preemption_signal_saves_the_step_in_flight_and_requeues(slurm_cluster, tmp_path):
    """SLURM sends SIGUSR2 before a preemption or time limit (`scancel --signal` sends the same here).
    pretrain finishes the step in flight, checkpoints it although no periodic checkpoint is due, and
    submitit requeues the job, which resumes from that step and ends with the uninterrupted record."""
    steps = 100
    pair = launch_side_by_side(tmp_path, "signalled", "unsignalled", steps=steps, every=steps)
    spec, entry, run_folder = pair.spec, pair.entry, pair.run_folder

    deadline = time.time() + 180
    while not (run_folder / "metrics.jsonl").exists() or len(_metrics(run_folder)) < 5:
        assert time.time() < deadline, f"no training steps logged after 180 s\n{_squeue()}"
        time.sleep(0.1)
    signalled = subprocess.run(["scancel", "--signal=USR2", entry["job_id"]], check=False, capture_output=True,
                               text=True)
    assert signalled.returncode == 0, signalled.stderr

    assert_ends_as_the_uninterrupted_run(pair, steps)
    log = Path(entry["stdout"]).read_text()
    saved = re.search(r"lejepa: preemption signal during step (\d+): checkpoint step_(\d+)\.pt written", log)
    assert saved, log
    step = int(saved.group(1))
    assert 5 <= step < steps and int(saved.group(2)) == step  # off the periodic schedule (every 100)
    assert re.search(rf"run {spec.run_id} attempt 2 on .*: resuming from step_{step:08d}\.pt", log), log


def _metrics(run_folder: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in ("images_per_second", "elapsed")} for line in lines]


def _results_only(record: dict) -> dict:
    """What a run measured, without its identity, timing and environment."""
    timing = ("wall_seconds", "images_per_second")
    evaluation = {k: v for k, v in record["evaluation"].items() if k not in timing}
    evaluation["probes"] = {name: {k: v for k, v in section.items() if k not in timing}
                            for name, section in evaluation.get("probes", {}).items()}
    return {"status": record["status"],
            "pretrain": {k: v for k, v in record["pretrain"].items() if k not in timing},
            "evaluation": evaluation}


@dataclass
class SideBySide:
    """One run to interrupt and an identical one left alone, both submitted to the cluster."""
    results: Path
    interrupted: Manifest
    reference: Manifest
    spec: RunSpec
    entry: dict  # the interrupted run's ledger entry: job id, stdout and stderr paths
    run_folder: Path


def launch_side_by_side(tmp_path: Path, interrupted: str, reference: str, *, steps: int, every: int) -> SideBySide:
    results = tmp_path / "results"
    manifests = [load_manifest(write_slurm_manifest(tmp_path, name, steps=steps, every=every, seeds=[0]))
                 for name in (interrupted, reference)]
    for manifest in manifests:  # side by side, one CPU each
        assert main(["launch", str(manifest.path), "--executor", "slurm", "--results", str(results)]) == 0
    spec = manifests[0].runs[0]
    return SideBySide(results, *manifests, spec, read_ledger(results, interrupted)["runs"][spec.run_id],
                      results / interrupted / spec.run_id)


def assert_ends_as_the_uninterrupted_run(pair: SideBySide, steps: int) -> None:
    """Both finish; the interrupted run's record and per-step metrics equal the reference's."""
    wait_until_finished(pair.interrupted, pair.results, timeout=300)
    wait_until_finished(pair.reference, pair.results, timeout=120)
    reference_id = pair.reference.runs[0].run_id
    interrupted = read_record(record_path(pair.results, pair.interrupted.name, pair.spec.run_id))
    uninterrupted = read_record(record_path(pair.results, pair.reference.name, reference_id))
    assert interrupted["status"] == "done" and interrupted["pretrain"]["steps"] == steps
    assert _results_only(interrupted) == _results_only(uninterrupted)
    metrics = _metrics(pair.run_folder)
    assert [m["step"] for m in metrics] == list(range(1, steps + 1))  # steps past the checkpoint were dropped
    assert metrics == _metrics(pair.results / pair.reference.name / reference_id)


def test_requeued_job_resumes_from_its_checkpoint_to_the_same_record(slurm_cluster, tmp_path, capsys):
    """`scontrol requeue` on this Slurm (22.05) sends SIGTERM, which submitit ignores, then SIGKILL after
    KillWait; the job goes back to the queue and starts again once its begin time passes. Nothing is saved
    at the signal: the resume comes from the newest periodic checkpoint, and a CPU run is bit-identical."""
    steps = 100
    pair = launch_side_by_side(tmp_path, "preempted", "reference", steps=steps, every=5)
    results, preempted, spec, entry, run_folder = pair.results, pair.interrupted, pair.spec, pair.entry, pair.run_folder

    deadline = time.time() + 180
    while not checkpoint_paths(run_folder / "ckpt"):
        assert time.time() < deadline, f"no checkpoint after 180 s\n{_squeue()}"
        time.sleep(0.1)
    requeue = subprocess.run(["scontrol", "requeue", entry["job_id"]], check=False, capture_output=True, text=True)
    assert requeue.returncode == 0, requeue.stderr
    (state,) = collect_status(preempted.name, list(preempted.runs), results)
    assert state.state in ("pending", "running"), state  # back in the queue: not failed
    capsys.readouterr()
    assert main(["launch", str(preempted.path), "--executor", "slurm", "--results", str(results)]) == 0
    assert "0 run(s) submitted with the slurm executor, 0 already done (skipped), 1 still queued or running" in (
        capsys.readouterr().out)  # and not submitted a second time

    assert_ends_as_the_uninterrupted_run(pair, steps)
    log = Path(entry["stdout"]).read_text()
    assert f"run {spec.run_id} attempt 1 on" in log and "no checkpoint yet, starting from step 0" in log
    resumed = re.search(rf"run {spec.run_id} attempt 2 on .*: resuming from step_(\d+)\.pt", log)
    assert resumed, log
    assert 0 < int(resumed.group(1)) < steps and int(resumed.group(1)) % 5 == 0
    assert "DUE TO JOB REQUEUE" in Path(entry["stderr"]).read_text()

    assert main(["status", str(preempted.path), "--results", str(results)]) == 0
    assert "counts: done 1" in capsys.readouterr().out
