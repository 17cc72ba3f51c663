"""Is a run's job still queued or running? squeue for SLURM jobs, the run's lock for jobs on this machine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from lejepa.run_lock import is_locked
from slurm.ledger import read_ledger

# squeue's job states, folded into the states `lejepa status` shows.
QUEUED_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESV_DEL_HOLD",
                 "SPECIAL_EXIT", "RESIZING"}
RUNNING_STATES = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}


def slurm_states(job_ids: list[str]) -> dict[str, tuple[str, str]] | None:
    """job id -> (squeue state, reason), one entry per array task; None when squeue cannot be asked.
    Jobs that left the queue are absent (sacct is not relied on: clusters without accounting exist)."""
    if not job_ids or shutil.which("squeue") is None:
        return None if job_ids else {}
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(arrays), "-o", "%i|%T|%r"],
                             check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        return None
    states = {}
    for line in out.stdout.splitlines():
        job_id, state, reason = (line.split("|") + ["", ""])[:3]
        states[job_id.strip()] = (state.strip(), reason.strip())
    return states


def live_jobs(results_root: Path, experiment: str, run_ids: list[str]) -> dict[str, tuple[str, str]]:
    """run_id -> ("pending"|"running"|"unknown", detail) for runs whose job is still queued or running (a
    trainer holding the run's lock counts, whoever started it), or whose SLURM job cannot be checked."""
    ledger = read_ledger(results_root, experiment)["runs"]
    entries = {run_id: ledger[run_id] for run_id in run_ids if run_id in ledger}
    queue = slurm_states([e["job_id"] for e in entries.values() if e.get("executor") == "slurm"])
    live = {}
    for run_id in run_ids:
        entry = entries.get(run_id, {})
        holder = is_locked(Path(results_root) / experiment / run_id)
        if entry.get("executor") == "slurm" and queue is None:  # cannot tell: never risk a double submission
            live[run_id] = ("unknown", f"job {entry['job_id']}: squeue cannot be reached to check it")
        elif entry.get("executor") == "slurm" and entry["job_id"] in queue:
            state, reason = queue[entry["job_id"]]
            if state in QUEUED_STATES:
                live[run_id] = ("pending", f"job {entry['job_id']} queued ({reason or state})")
            elif state in RUNNING_STATES:
                live[run_id] = ("running", f"job {entry['job_id']} {state.lower()}")
        elif holder:
            live[run_id] = ("running", f"trained by {holder}")
    return live
