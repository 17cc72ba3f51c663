"""Every way of running a run trains with its resources.cpus_per_task CPU threads, as a launched local or
SLURM job does, so one run_id gives the same numbers whichever command ran it (issue 16, case 8). The
numbers themselves are compared across executors in test_one_trainer.py."""

from __future__ import annotations

import pytest
import torch
from conftest import write_manifest

from evaluation.record import make_record
from experiments.cli import main
from experiments.manifest import load_manifest

THREADS = 3  # neither torch's default on a 2-core machine nor 1
MANIFEST = f"""\
name: threads
defaults:
  data: {{name: digits}}
  resources: {{cpus_per_task: {THREADS}}}
"""


@pytest.fixture
def threads_seen(monkeypatch):
    """Stand in for the one-run pipeline: note the thread count it would train with."""
    seen = []

    def run_job(spec, results_root, progress=True):
        seen.append(torch.get_num_threads())
        return make_record(spec, "done")

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # a value set by hand wins, by design
    monkeypatch.setattr("evaluation.pipeline.run_job", run_job)
    before = torch.get_num_threads()
    yield seen
    torch.set_num_threads(before)


@pytest.mark.parametrize("command", [["run", "--only", "RUN_ID"], ["launch", "--executor", "debug"]],
                         ids=["lejepa run", "launch --executor debug"])
def test_in_process_commands_use_the_runs_cpus_per_task(tmp_path, capsys, threads_seen, command):
    path = write_manifest(tmp_path, MANIFEST)
    (spec,) = load_manifest(path).runs
    argv = [word.replace("RUN_ID", spec.run_id) for word in command]
    assert main([argv[0], str(path), *argv[1:], "--results", str(tmp_path / "results")]) == 0
    assert threads_seen == [THREADS]


def test_a_gpu_run_trains_with_one_thread_and_evaluates_with_all():
    """Issue 17: the training process of a GPU run leaves the cores to its loader's workers; the threads
    come back for evaluation. A CPU run keeps its threads (the training process does the work there)."""
    from lejepa.threads import training_threads

    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        with training_threads(torch.device("cuda", 0)):  # only the device's type is read: no GPU needed
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == THREADS
        with training_threads(torch.device("cpu")):
            assert torch.get_num_threads() == THREADS
        with pytest.raises(RuntimeError), training_threads(torch.device("cuda")):
            raise RuntimeError("a failed run still gives the threads back")
        assert torch.get_num_threads() == THREADS
    finally:
        torch.set_num_threads(before)
