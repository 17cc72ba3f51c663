"""The launch ledger, results/<experiment>/launch.json: run_id -> the job that last ran it (for `lejepa
status`), and a short history of launches.

Only launching processes write it (array tasks write only their own records), under an exclusive file lock,
by atomic rename. A ledger that does not parse is set aside as launch.json.corrupt (kept) and a new one is
started, with a warning: it only records where jobs went, and records remain the source of truth.
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from lejepa.checkpoint import set_aside
from lejepa.files import atomic_write_text

LEDGER_NAME = "launch.json"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def ledger_path(results_root: Path, experiment: str) -> Path:
    return Path(results_root) / experiment / LEDGER_NAME


def read_ledger(results_root: Path, experiment: str) -> dict:
    path = ledger_path(results_root, experiment)
    if not path.exists():
        return {"runs": {}, "launches": []}
    try:
        ledger = json.loads(path.read_text())
        if not _well_formed(ledger):
            raise ValueError("not a ledger (a 'runs' mapping of job entries and a 'launches' list)")
    except (ValueError, OSError) as error:
        warnings.warn(f"{path} is unreadable ({error}); its job entries are ignored (records still count)",
                      stacklevel=2)
        return {"runs": {}, "launches": [], "unreadable": str(path)}
    return ledger


def _well_formed(ledger) -> bool:
    return (isinstance(ledger, dict) and isinstance(ledger.get("runs"), dict)
            and isinstance(ledger.get("launches", []), list)
            and all(isinstance(entry, dict) and isinstance(entry.get("job_id"), str) for entry in ledger["runs"].values()))


@contextmanager
def locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two `lejepa launch` at once: one waits, neither loses entries
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_ledger(results_root: Path, experiment: str, entries: dict[str, dict], launch: dict | None = None) -> None:
    """Add or replace runs' job entries, and note a launch (when given) in the launch history."""
    path = ledger_path(results_root, experiment)
    with locked(path):
        ledger = read_ledger(results_root, experiment)
        if ledger.pop("unreadable", None) and path.exists():
            aside = set_aside(path)
            warnings.warn(f"{path} could not be read: kept as {aside.name}, a new ledger is started", stacklevel=2)
        for run_id, entry in entries.items():
            previous = ledger["runs"].get(run_id)
            if previous:
                entry["previous_jobs"] = [*previous.get("previous_jobs", []), previous["job_id"]][-10:]
            ledger["runs"][run_id] = entry
        if launch:
            ledger["launches"] = [*ledger.get("launches", []), launch][-50:]
        atomic_write_text(path, json.dumps(ledger, indent=2, sort_keys=True))


def job_entry(job, executor: str) -> dict:
    """A submitit job as a ledger entry."""
    return {"job_id": str(job.job_id), "executor": executor, "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr), "submitted": now(), "host": os.uname().nodename}
