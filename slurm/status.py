"""`lejepa status`: each run's state from its record (the source of truth), else from its job, and an ETA."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evaluation.health import DID_NOT_LEARN, failed_checks, study_health
from evaluation.record import NewerSchema, RecordError, read_record, read_records, record_path
from lejepa.spec import RunSpec
from slurm.ledger import read_ledger
from slurm.progress import Progress, progress_text, read_progress
from slurm.queue import live_jobs


@dataclass
class RunState:
    spec: RunSpec
    state: str  # done, running, pending, failed, diverged (unknown: the queue could not be asked)
    detail: str
    log: str | None = None
    seconds: float | None = None  # pretraining + evaluation wall time, for finished runs
    progress: Progress | None = None  # the newest metrics line of a running run


# What a job's log says when something outside the run ended it (SLURM and the kernel's words).
# Markers are whole phrases: a bare "oom" would match ordinary words, and a CUDA "out of memory" is a crash
# (with a failed record), not a kill.
_ENDINGS = (("oom-kill", "killed for using too much memory (raise resources.mem_gb)"),
            ("oom_kill", "killed for using too much memory (raise resources.mem_gb)"),
            ("out-of-memory", "killed for using too much memory (raise resources.mem_gb)"),
            ("due to time limit", "stopped at its time limit (raise resources.time_min)"),
            ("due to node fail", "its node failed (relaunch to resume from the newest checkpoint)"),
            ("cancelled at", "cancelled (scancel)"), ("killed", "killed by a signal"))


def ended_without_record(path: str | None) -> str:
    """Why a job ended without a record, from its stderr: the cause when the log names one, and always its
    last line (a crash's last line is its exception)."""
    if not path or not Path(path).is_file():
        return "it left no log (never started, or its log folder was removed)"
    lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    if not lines:
        return "its log is empty (killed before it printed anything?)"
    tail = " ".join(lines[-20:]).lower()
    cause = next((words for marker, words in _ENDINGS if marker in tail), None)
    last = f"last log line: {lines[-1][:300]}"
    return f"{cause}; {last}" if cause else f"it crashed or was killed before writing one; {last}"


def collect_status(experiment: str, specs: list[RunSpec], results_root: Path) -> list[RunState]:
    results_root = Path(results_root)
    ledger = read_ledger(results_root, experiment)["runs"]
    live = live_jobs(results_root, experiment, [s.run_id for s in specs])
    wanted = {s.run_id for s in specs}
    health = study_health([r for r in read_records(results_root, experiment)[0] if r["run_id"] in wanted])
    states = []
    for spec in specs:
        entry = ledger.get(spec.run_id, {})
        log = entry.get("stderr")
        path = record_path(results_root, spec.experiment, spec.run_id)
        if spec.run_id in live:  # a job in flight (a rerun, say) outranks an older record
            state, detail = live[spec.run_id]
            progress = read_progress(results_root, spec)
            detail += f", {progress_text(progress)}" if progress else ""
            states.append(RunState(spec, state, detail, log, progress=progress))
        elif path.exists():
            states.append(_state_from_record(spec, path, log, health.get(spec.run_id)))
        elif not entry:
            states.append(RunState(spec, "pending", "not submitted yet"))
        else:
            states.append(RunState(spec, "failed", f"job {entry['job_id']} ended without a record: "
                                                   f"{ended_without_record(log)}", log))
    return states


def _state_from_record(spec: RunSpec, path: Path, log: str | None, health: dict | None = None) -> RunState:
    """A done run whose health check failed (evaluation/health.py) says "did not learn" and which checks failed."""
    try:
        record = read_record(path, expect_run_id=spec.run_id)
    except NewerSchema as error:  # not this version's to judge (or to overwrite)
        return RunState(spec, "unknown", str(error), log)
    except (RecordError, OSError) as error:
        return RunState(spec, "failed", f"record unusable: {error}", log)
    status, seconds = record["status"], None
    if status == "done":
        seconds = (record["pretrain"].get("wall_seconds") or 0.0) + (record["evaluation"].get("wall_seconds") or 0.0)
        top1 = record["evaluation"].get("linear_top1")
        detail = f"linear top-1 {top1:.4f}" if isinstance(top1, (int, float)) else "done"
        if health and health.get("verdict") == DID_NOT_LEARN:
            detail = f"{DID_NOT_LEARN.upper()}: {failed_checks(health)}; {detail}"
    else:
        detail = record.get("reason") or "no reason recorded"
    return RunState(spec, status, detail, log, seconds)


def eta_estimate(states: list[RunState]) -> str:
    """Time left, and how it was computed: a running run's pretraining from its speed (steps left / steps
    per second, from its newest metrics line), pending runs from the mean wall time of finished runs."""
    running = [s for s in states if s.state == "running"]
    pending = [s for s in states if s.state == "pending"]
    if not running and not pending:
        return "ETA: nothing left to run" + (" (failed runs need a relaunch)" if any(
            s.state == "failed" for s in states) else "")
    finished = [s.seconds for s in states if s.seconds]
    mean = sum(finished) / len(finished) if finished else None
    parts, total, unknown = [], 0.0, []
    timed = [s.progress.seconds_left for s in running if s.progress and s.progress.seconds_left is not None]
    if timed:
        total += max(timed)
        parts.append(f"{len(timed)} running run(s) end pretraining in {duration(max(timed))} at their measured "
                     f"speed (steps left / steps per second; their evaluation not included)")
    if len(timed) < len(running):
        unknown.append(f"{len(running) - len(timed)} running run(s) have no speed yet (no training step logged, "
                       f"or they do not pretrain)")
    if pending:
        if mean is None:
            unknown.append(f"{len(pending)} pending run(s) until a run finishes")
        else:
            parallel = max(1, len(running))
            total += mean * len(pending) / parallel
            parts.append(f"{len(pending)} pending run(s) x {duration(mean)} mean wall time (pretraining + "
                         f"evaluation, of {len(finished)} done run(s)) / {parallel} at once")
    text = f"ETA: about {duration(total)} = " + " + ".join(parts) if parts else "ETA: unknown"
    text += f"; not known: {'; '.join(unknown)}" if unknown else ""
    return text + "; queue waits not included"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
