"""The three ways to run a launch's runs, behind one interface: `Executor.run(specs, launch)`.

- slurm: one job array per distinct resources block, submitted and left to the cluster;
- local: subprocesses on this machine, `parallelism` at a time, waited for;
- debug: in this process, one after another (breakpoints work), waited for.
Each notes its jobs in the ledger as it submits them and reports finished runs into the launch outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import submitit

from evaluation.record import record_path
from lejepa.spec import RunSpec
from slurm.job import JOB_SETUP, RunJob
from slurm.ledger import job_entry, update_ledger
from slurm.progress import LiveLines, run_line
from slurm.sbatch import group_by_resources, sbatch_parameters


@dataclass
class LaunchOutcome:
    submitted: dict[str, str] = field(default_factory=dict)  # run_id -> job id
    failed: dict[str, str] = field(default_factory=dict)  # run_id -> reason (local and debug executors)
    skipped: dict[str, str] = field(default_factory=dict)  # run_id -> why (another process trains it)


@dataclass
class Launch:
    """What every executor needs to know about the launch it serves."""

    experiment: str
    results_root: Path
    logs: Path
    parallelism: int | None
    echo: Callable[[str], None]
    outcome: LaunchOutcome
    info: dict  # the launch's entry in the ledger's history

    def note(self, job: submitit.Job, spec: RunSpec, executor: str) -> None:
        update_ledger(self.results_root, self.experiment, {spec.run_id: job_entry(job, executor)})
        self.outcome.submitted[spec.run_id] = str(job.job_id)

    def collect(self, job: submitit.Job, spec: RunSpec) -> None:
        """A finished job's result into the outcome: its record's status, or why the job failed."""
        try:
            result = job.result()
        except Exception as error:  # noqa: BLE001  any failure of the job itself: reported, the rest go on
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            self.outcome.failed[spec.run_id] = reason
            self.echo(f"FAILED {spec.run_id}: {reason}; log {job.paths.stderr}")
            return
        status = result.get("status", "done") if isinstance(result, dict) else "done"
        if status == "skipped":
            self.outcome.skipped[spec.run_id] = result["reason"]
            self.echo(f"skipped {spec.run_id}: {result['reason']}")
            return
        if status != "done":
            self.outcome.failed[spec.run_id] = status
        self.echo(f"{status} {spec.run_id}: record {record_path(self.results_root, spec.experiment, spec.run_id)}")


class SlurmExecutor:
    name = "slurm"

    def run(self, specs: list[RunSpec], launch: Launch) -> None:
        for resources, group in group_by_resources(specs):
            executor = submitit.AutoExecutor(folder=launch.logs, cluster="slurm")
            executor.update_parameters(**sbatch_parameters(resources, launch.experiment, launch.parallelism),
                                       slurm_setup=JOB_SETUP)
            jobs = executor.map_array(RunJob(), group, [str(launch.results_root)] * len(group))
            array = jobs[0].job_id.split("_")[0]
            entries = {spec.run_id: job_entry(job, self.name) for spec, job in zip(group, jobs)}
            update_ledger(launch.results_root, launch.experiment, entries, {**launch.info, "array": array})
            launch.outcome.submitted.update({run_id: e["job_id"] for run_id, e in entries.items()})
            what = f"job array {array} ({len(group)} tasks)" if len(group) > 1 else f"job {jobs[0].job_id}"
            launch.echo(f"submitted {what}; logs in {launch.logs}")  # a one-task array is a plain job


def _visible_gpus(slot: int, per_job: int) -> tuple[int, ...]:
    """Local jobs running side by side get disjoint GPUs when the machine has enough of them."""
    if per_job == 0:
        return ()
    import torch

    count = torch.cuda.device_count()
    if count >= (slot + 1) * per_job:
        return tuple(range(slot * per_job, (slot + 1) * per_job))
    return tuple(range(min(per_job, count)))


class LocalExecutor:
    """Subprocesses on this machine, at most `parallelism` at a time (submitit's LocalExecutor starts every
    job it is given at once, so jobs are handed over one by one as slots free up). While it waits it shows
    one progress line per running run (slurm/progress.py): in place on a terminal, else every
    `plain_progress_every` seconds."""

    name = "local"
    plain_progress_every = 30.0

    def run(self, specs: list[RunSpec], launch: Launch) -> None:
        live = LiveLines(plain_every=self.plain_progress_every)
        echo = launch.echo

        def echo_above_progress(text: str) -> None:  # a message never lands inside the progress block
            live.clear()
            echo(text)

        launch.echo = echo_above_progress
        try:
            self._run(specs, launch, live)
        finally:
            live.clear()
            launch.echo = echo

    def _run(self, specs: list[RunSpec], launch: Launch, live: LiveLines) -> None:
        import torch

        gpus_here = torch.cuda.device_count()
        waiting, running, started = list(specs), {}, {}
        update_ledger(launch.results_root, launch.experiment, {}, launch.info)
        try:
            while waiting or running:
                for slot in [s for s in range(launch.parallelism or 1) if s not in running]:
                    if not waiting:
                        break
                    spec = waiting.pop(0)
                    if spec.resources.gpus_per_node > gpus_here:
                        launch.echo(f"note: {spec.run_id} asks for {spec.resources.gpus_per_node} GPU(s) per node; "
                                    f"this machine has {gpus_here}, so it gets {gpus_here}")
                    executor = submitit.LocalExecutor(folder=launch.logs)
                    gpus = _visible_gpus(slot, min(spec.resources.gpus_per_node, gpus_here))
                    executor.update_parameters(timeout_min=spec.resources.time_min, gpus_per_node=len(gpus),
                                               tasks_per_node=spec.resources.tasks_per_node, visible_gpus=gpus)
                    job = executor.submit(RunJob(), spec, str(launch.results_root))
                    running[slot] = (spec, job)
                    started[spec.run_id] = time.monotonic()
                    launch.note(job, spec, self.name)
                    launch.echo(f"started {spec.run_id} (local job {job.job_id}); log {job.paths.stderr}")
                for slot, (spec, job) in list(running.items()):
                    if job.done():
                        del running[slot]
                        launch.collect(job, spec)
                if live.due():
                    live.show([run_line(launch.results_root, spec, time.monotonic() - started[spec.run_id])
                               for spec, _ in running.values()])
                time.sleep(0.5)
        except KeyboardInterrupt:
            for spec, job in running.values():
                job.cancel(check=False)
                launch.echo(f"interrupted {spec.run_id}; relaunch to resume it from its newest checkpoint")
            raise


class DebugExecutor:
    """In this process, one run after another (submitit's DebugExecutor: breakpoints work)."""

    name = "debug"

    def run(self, specs: list[RunSpec], launch: Launch) -> None:
        update_ledger(launch.results_root, launch.experiment, {}, launch.info)
        for spec in specs:
            job = submitit.DebugExecutor(folder=launch.logs).submit(RunJob(), spec, str(launch.results_root))
            launch.note(job, spec, self.name)
            launch.echo(f"running {spec.run_id} in this process")
            launch.collect(job, spec)


EXECUTORS = {cls.name: cls for cls in (LocalExecutor, SlurmExecutor, DebugExecutor)}
