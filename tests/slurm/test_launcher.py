"""The launcher on this machine (docs/pipeline.md section 1): local and debug executors, skip, force, status,
and many processes writing records and the ledger at once. The SLURM executor is in test_slurm.py."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from evaluation.accuracies import probe_accuracy
from evaluation.record import make_record, read_record, record_path, write_record
from experiments.cli import main
from experiments.manifest import load_manifest
from slurm.executors import LocalExecutor
from slurm.ledger import ledger_path, read_ledger, update_ledger
from slurm.plan import plan_launch, set_aside_previous

TINY_MANIFEST = """\
name: launcher
defaults:
  data: {name: digits, train_limit: 256, test_limit: 100}
  model: {arch: resnet18, timm_kwargs: {channels: [8, 16, 32, 64]}, proj_hidden: 64, proj_dim: 16}
  views: {global_views: 2, local_views: 2}
  train: {max_steps: 4, batch_size: 32, checkpoint_every: 2, log_every: 1}
  eval: {linear_epochs: 2, knn_k: [10, 20], linear_lrs: [1.0e-3]}
  method: {name: lejepa, lamb: 0.05, num_slices: 32}
  resources: {cpus_per_task: 1, mem_gb: 2, time_min: 10}
grid:
  seed: [0, 1]
"""


def write_manifest(folder: Path, text: str = TINY_MANIFEST) -> Path:
    path = folder / "launcher.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_local_launch_status_skip_and_force(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # a set value wins over resources.cpus_per_task
    monkeypatch.setattr(LocalExecutor, "plain_progress_every", 0.0)  # progress lines at every look
    path, results = write_manifest(tmp_path), tmp_path / "results"
    manifest = load_manifest(path)
    args = [str(path), "--results", str(results)]

    assert main(["launch", *args, "--parallelism", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 run(s) submitted with the local executor, 0 already done" in out
    progress = [line for line in out.splitlines() if line.startswith("progress ")]
    for spec in manifest.runs:  # both ran at once, each with its own line while it ran
        assert any(f" {spec.run_id}: " in line for line in progress)
    assert all(re.search(r": (step \d+/4, |starting |evaluating )", line) for line in progress)
    ledger = read_ledger(results, "launcher")
    for spec in manifest.runs:
        record = read_record(record_path(results, "launcher", spec.run_id))
        assert record["status"] == "done" and record["spec"] == spec.to_dict()
        assert record["pretrain"]["steps"] == 4 and 0.0 < probe_accuracy(record, "linear") <= 1.0
        entry = ledger["runs"][spec.run_id]
        assert entry["executor"] == "local"
        log = Path(entry["stdout"]).read_text()  # each job used the one CPU it asked for
        assert f"run {spec.run_id} attempt 1" in log and "with 1 CPU thread(s): no checkpoint yet" in log

    assert main(["status", *args]) == 0
    out = capsys.readouterr().out
    assert "counts: done 2" in out and "ETA: nothing left to run" in out
    for spec in manifest.runs:
        assert any(line.split()[:2] == [spec.run_id, "done"] for line in out.splitlines())

    # Relaunch: everything is done, nothing is submitted, not a byte changes.
    before = snapshot(results)
    assert main(["launch", *args]) == 0
    assert "0 run(s) submitted with the local executor, 2 already done (skipped)" in capsys.readouterr().out
    assert snapshot(results) == before

    # --force reruns (here in-process with the debug executor); earlier outputs are moved, never deleted.
    assert main(["launch", *args, "--force", "--executor", "debug"]) == 0
    assert "2 run(s) submitted with the debug executor" in capsys.readouterr().out
    for spec in manifest.runs:
        folder = results / "launcher" / spec.run_id
        (aside,) = folder.glob("replaced-*")
        old = {name: data for name, data in before.items() if name.startswith(f"launcher/{spec.run_id}/")}
        assert old and {f"launcher/{spec.run_id}/{aside.name}/{name.split('/', 2)[2]}": data
                        for name, data in old.items()}.items() <= snapshot(results).items()
        assert read_record(folder / "result.json")["status"] == "done"
        assert read_record(folder / "result.json")["created"] >= read_record(aside / "result.json")["created"]
        assert (folder / "ckpt" / "step_00000004.pt").is_file()  # trained again from scratch
    ledger_now = read_ledger(results, "launcher")
    assert [launch["executor"] for launch in ledger_now["launches"]] == ["local", "debug"]  # not the no-op relaunch
    for spec in manifest.runs:  # the rerun's job replaces the first in the ledger, which keeps the old id
        assert ledger_now["runs"][spec.run_id]["executor"] == "debug"
        assert ledger_now["runs"][spec.run_id]["previous_jobs"] == [ledger["runs"][spec.run_id]["job_id"]]


def test_failed_run_is_reported_and_relaunched(tmp_path, capsys):
    path, results = write_manifest(tmp_path), tmp_path / "results"
    args = [str(path), "train.batch_size=512", "--results", str(results)]  # more than the 256 images
    assert main(["launch", *args, "--executor", "debug"]) == 1
    out, err = capsys.readouterr()
    assert "FAILED lejepa-digits-resnet18-s0-" in out and "2 run(s) did not finish as done" in err
    assert main(["status", *args]) == 0
    out = capsys.readouterr().out
    assert "counts: failed 2" in out and "train.batch_size=512 is larger than the 256 training images" in out
    manifest = load_manifest(path, ["train.batch_size=512"])
    assert plan_launch(manifest.name, list(manifest.runs), results).to_run == list(manifest.runs)  # failed runs go again


def test_a_run_whose_trainer_is_alive_is_not_submitted_twice(tmp_path):
    """Liveness is the run folder's lock, held by whichever process trains the run (an orphaned worker
    too), not a PID in the ledger: a live but unrelated PID there (a reused one) does not count."""
    manifest = load_manifest(write_manifest(tmp_path))
    spec = manifest.runs[0]
    entry = {"job_id": str(os.getpid()), "executor": "local", "host": os.uname().nodename, "stdout": "", "stderr": ""}
    update_ledger(tmp_path, "launcher", {spec.run_id: entry}, {"executor": "local"})
    assert plan_launch(manifest.name, list(manifest.runs), tmp_path).to_run == list(manifest.runs)

    folder = tmp_path / "launcher" / spec.run_id
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from lejepa.run_lock import run_lock\n"
        f"with run_lock({str(folder)!r}):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        plan = plan_launch(manifest.name, list(manifest.runs), tmp_path)
        assert plan.live[spec.run_id][0] == "running" and f"pid {holder.pid}" in plan.live[spec.run_id][1]
        assert plan.to_run == [manifest.runs[1]]
    finally:
        holder.kill()
        holder.wait()
    assert plan_launch(manifest.name, list(manifest.runs), tmp_path).to_run == list(manifest.runs)  # died: free


def test_force_twice_keeps_both_earlier_outputs(tmp_path, tiny_spec):
    spec = tiny_spec(experiment="launcher")
    folder = tmp_path / "launcher" / spec.run_id
    write_record(tmp_path, make_record(spec, "done"))
    first = set_aside_previous(tmp_path, spec)
    write_record(tmp_path, make_record(spec, "failed", reason="second"))
    second = set_aside_previous(tmp_path, spec)
    assert first != second and first.parent == second.parent == folder
    assert read_record(first / "result.json")["status"] == "done"
    assert read_record(second / "result.json")["reason"] == "second"
    assert set_aside_previous(tmp_path, spec) is None  # only replaced-* folders left: nothing to move


# --------------------------------------------------------------------------------------- concurrency

WRITERS, ROUNDS = 16, 15


def _writer(barrier, results: str, spec_dicts: list[dict], index: int) -> None:
    """One 'finished job': rewrites its record several times (growing) and adds itself to the ledger."""
    from lejepa.spec import RunSpec

    spec = RunSpec.from_dict(spec_dicts[index])
    barrier.wait()
    for round_ in range(ROUNDS):
        padding = "x" * (round_ * 4096)  # records of changing size: a torn write would not parse
        write_record(Path(results), make_record(spec, "done", evaluation={"linear_top1": round_ / ROUNDS},
                                                reason=padding or None))
    update_ledger(Path(results), spec.experiment, {spec.run_id: {"job_id": str(index), "executor": "local"}},
                  {"writer": index})


def _reader(barrier, results: str, experiment: str, stop, errors) -> None:
    """Reads every record and the ledger while they are being written; any half-written file is an error."""
    folder = Path(results) / experiment
    barrier.wait()
    while not stop.is_set():
        for path in list(folder.glob("*/result.json")) + [folder / "launch.json"]:
            try:
                json.loads(path.read_text())
            except FileNotFoundError:
                continue
            except ValueError as error:
                errors.put(f"{path}: {error}")


def test_many_processes_finishing_at_once_lose_nothing(tmp_path, capsys):
    text = TINY_MANIFEST.replace("seed: [0, 1]", f"seed: {list(range(WRITERS))}")
    path, results = write_manifest(tmp_path, text), tmp_path / "results"
    manifest = load_manifest(path)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WRITERS + 2)
    stop, errors = context.Event(), context.Queue()
    specs = [spec.to_dict() for spec in manifest.runs]
    readers = [context.Process(target=_reader, args=(barrier, str(results), "launcher", stop, errors))
               for _ in range(2)]
    writers = [context.Process(target=_writer, args=(barrier, str(results), specs, i)) for i in range(WRITERS)]
    for process in readers + writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    stop.set()
    for process in readers:
        process.join(30)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []

    for spec in manifest.runs:
        record = read_record(record_path(results, "launcher", spec.run_id))
        assert probe_accuracy(record, "linear") == (ROUNDS - 1) / ROUNDS  # each writer's last version
    ledger = read_ledger(results, "launcher")
    assert sorted(ledger["runs"]) == sorted(s.run_id for s in manifest.runs)
    assert sorted(launch["writer"] for launch in ledger["launches"]) == list(range(WRITERS))
    leftovers = [p.name for p in (results / "launcher").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [] and ledger_path(results, "launcher").is_file()

    capsys.readouterr()
    assert main(["status", str(path), "--results", str(results)]) == 0
    assert f"counts: done {WRITERS}" in capsys.readouterr().out
