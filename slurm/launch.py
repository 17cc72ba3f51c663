"""`lejepa launch`: submit every run of an experiment that is not done, queued or running.

What a launch guarantees:
- Runs whose record says "done" are skipped, and so are runs whose job is still queued or running (or
  whose run folder a live trainer holds), so relaunching submits only what is missing or failed. `force`
  reruns done runs from scratch, after moving their old outputs into <run_id>/replaced-<time>/.
- Nothing is submitted unless every check passes: the executor can host the runs, transfer sources are
  done, the results folder is writable.
- SLURM: one job array per distinct resources block, capped by `parallelism`; preempted or timed-out tasks
  are requeued and resume from their newest checkpoint (slurm/job.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from lejepa.spec import RunSpec
from slurm.executors import EXECUTORS, Launch, LaunchOutcome
from slurm.ledger import now
from slurm.plan import (
    LaunchError,
    LaunchPlan,
    check_transfer_sources,
    ensure_records_writable,
    plan_launch,
    set_aside_previous,
)


def check_executor(source: str, executor: str, specs: list[RunSpec]) -> None:
    if executor not in EXECUTORS:
        raise LaunchError(f"unknown executor '{executor}' (choose one of {', '.join(EXECUTORS)})")
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise LaunchError(
            "--executor slurm needs SLURM's sbatch, which is not on PATH. On a cluster, run this on a login "
            "node; for a one-node test cluster on this machine run slurm/start_local_cluster.sh (as root); "
            "or use --executor local."
        )
    if executor != "slurm":
        multi = [s.run_id for s in specs if s.resources.nodes > 1]
        if multi:
            raise LaunchError(
                f"{source}: {len(multi)} run(s) ask for resources.nodes > 1 (e.g. {multi[0]}), but the "
                f"{executor} executor runs on this machine only: use --executor slurm, or resources.nodes=1."
            )


def launch(experiment: str, specs: list[RunSpec], results_root: Path, *, source: str = "", executor: str = "local",
           force: bool = False, parallelism: int | None = None,
           echo: Callable[[str], None] = print) -> tuple[LaunchPlan, LaunchOutcome]:
    """Submit every run that is not done (or all with force). Local and debug block until done.
    `source` names the manifest in messages."""
    results_root = Path(results_root)
    plan = plan_launch(experiment, specs, results_root, force)
    for why in plan.unusable.values():
        echo(f"record does not count, the run goes again (the file is set aside, kept): {why}")
    for why in plan.kept.values():
        echo(f"not run: {why}")
    check_executor(source or experiment, executor, plan.to_run)
    check_transfer_sources(results_root, plan.to_run)
    outcome = LaunchOutcome()
    if not plan.to_run:
        return plan, outcome
    ensure_records_writable(results_root, experiment)
    if force:
        for spec in plan.to_run:
            aside = set_aside_previous(results_root, spec)
            if aside:
                echo(f"--force: earlier outputs of {spec.run_id} moved to {aside}")
    info = {"time": now(), "executor": executor, "runs": len(plan.to_run),
            "parallelism": parallelism or (1 if executor == "local" else None)}
    context = Launch(experiment, results_root, results_root / experiment / "logs", parallelism, echo, outcome, info)
    EXECUTORS[executor]().run(plan.to_run, context)
    return plan, outcome
