"""What a launch would do, decided from the results folder alone (nothing is changed here), and the checks
that must pass before anything is submitted."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from evaluation.record import NewerSchema, RecordError, read_record, record_path, run_dir
from lejepa.spec import RunSpec
from slurm.queue import live_jobs


class LaunchError(Exception):
    """The launch cannot go ahead (no sbatch, a run the executor cannot host); nothing was submitted."""


@dataclass
class LaunchPlan:
    to_run: list[RunSpec]
    done: list[RunSpec] = field(default_factory=list)
    live: dict[str, tuple[str, str]] = field(default_factory=dict)  # run_id -> (state, detail)
    unusable: dict[str, str] = field(default_factory=dict)  # run_id -> why its record does not count (it runs)
    kept: dict[str, str] = field(default_factory=dict)  # run_id -> its record is of a newer schema (not run)


def record_state(results_root: Path, experiment: str, run_id: str) -> tuple[str | None, str | None]:
    """(the status the run's record says, None); (None, None) without a record; ("newer", why) for a record
    of a newer schema (never overwritten), ("unreadable", why) for one that is damaged or not this run's
    (the run is treated as not done)."""
    path = record_path(results_root, experiment, run_id)
    if not path.exists():
        return None, None
    try:
        return read_record(path, expect_run_id=run_id)["status"], None
    except NewerSchema as error:
        return "newer", str(error)
    except RecordError as error:
        return "unreadable", str(error)


def run_status(results_root: Path, experiment: str, run_id: str) -> str | None:
    """The status the run's record says; None without a record; "newer" or "unreadable" (record_state)."""
    return record_state(results_root, experiment, run_id)[0]


def source_status(results_root: Path, reference: str) -> str:
    """Status of the run a model.init_from reference ('EXPERIMENT/RUN_ID') names, in words."""
    experiment, _, run_id = reference.partition("/")
    return run_status(results_root, experiment, run_id) or "not run yet"


def plan_launch(experiment: str, specs: list[RunSpec], results_root: Path, force: bool = False) -> LaunchPlan:
    """Which runs a launch would submit: not done (or all, with force) and not queued or running. A run
    whose record file does not count goes again (and the plan says why); one whose record is of a newer
    schema is left alone unless forced (--force moves the record aside, kept)."""
    live = live_jobs(results_root, experiment, [s.run_id for s in specs])
    plan = LaunchPlan(to_run=[])
    for spec in specs:
        status, problem = record_state(results_root, experiment, spec.run_id)
        if spec.run_id in live:
            plan.live[spec.run_id] = live[spec.run_id]
        elif status == "newer" and not force:
            plan.kept[spec.run_id] = f"{problem}; --force reruns it (the record is moved aside, kept)"
        elif status == "done" and not force:
            plan.done.append(spec)
        else:
            plan.to_run.append(spec)
            if status == "unreadable":
                plan.unusable[spec.run_id] = problem
    return plan


def check_transfer_sources(results_root: Path, specs: list[RunSpec]) -> None:
    """Runs with model.init_from evaluate another run's final weights: refuse to queue them (where they
    would fail after the queue wait) before every source run has a done record."""
    missing: dict[str, str] = {}
    for spec in specs:
        reference = spec.model.init_from
        if not reference or reference in missing:
            continue
        status = source_status(results_root, reference)
        if status != "done":
            missing[reference] = status
    if missing:
        experiments = sorted({reference.partition("/")[0] for reference in missing})
        raise LaunchError(
            f"{len(missing)} source run(s) named by model.init_from are not done under {results_root}: "
            + "; ".join(f"{reference} ({status})" for reference, status in missing.items())
            + f". Launch experiment(s) {', '.join(experiments)} first (`lejepa launch MANIFEST`; `lejepa status "
            "MANIFEST` shows progress), then this one."
        )


def ensure_records_writable(results_root: Path, experiment: str) -> None:
    """Fail before submitting anything when the results folder cannot be written."""
    folder = Path(results_root) / experiment
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LaunchError(f"cannot create the results folder {folder}: {error.strerror}; use --results DIR") from None
    if not os.access(folder, os.W_OK):
        raise LaunchError(f"the results folder {folder} is not writable; use --results DIR")


def set_aside_previous(results_root: Path, spec: RunSpec) -> Path | None:
    """--force: move a run's earlier outputs into <run_id>/replaced-<time>/ so the rerun starts clean
    (no stale checkpoint to resume from) and nothing already written is lost."""
    folder = run_dir(results_root, spec.experiment, spec.run_id)
    if not folder.is_dir():
        return None
    items = [p for p in folder.iterdir() if not p.name.startswith("replaced-")]
    if not items:
        return None
    aside = folder / f"replaced-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}"
    aside.mkdir()
    for item in items:
        os.replace(item, aside / item.name)
    return aside
