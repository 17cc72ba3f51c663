"""Submit a manifest's runs through submitit: `local` (subprocesses here), `debug` (in-process), `slurm`.

What the launcher guarantees:
- Runs whose record says "done" are skipped, and so are runs whose job is still queued or running, so
  relaunching submits only what is missing or failed. `force` reruns done runs from scratch, after
  moving their old outputs into <run_id>/replaced-<time>/ (nothing is deleted).
- SLURM: one job array per distinct resources block (one per manifest in the usual case), capped by
  `slurm_array_parallelism`. The submitted callable is Checkpointable, so a preempted or timed-out
  task is requeued and resumes from its newest checkpoint (run_job does the resuming).
- A ledger, results/<experiment>/launch.json, maps run_id -> job id, executor and log paths for
  `lejepa status`. Only the launching process writes it (array tasks write only their own records),
  under an exclusive file lock, by atomic rename.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import submitit

from evaluation.record import read_record, record_path, run_dir
from experiments.manifest import Manifest
from lejepa.checkpoint import atomic_write_bytes, checkpoint_paths
from lejepa.spec import ResourceSpec, RunSpec

EXECUTORS = ("local", "slurm", "debug")
LEDGER_NAME = "launch.json"
# squeue's job states, folded into the states `lejepa status` shows.
QUEUED_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESV_DEL_HOLD",
                 "SPECIAL_EXIT", "RESIZING"}
RUNNING_STATES = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}


class LaunchError(Exception):
    """The launch cannot go ahead (no sbatch, a run the executor cannot host); nothing was submitted."""


def results_root_default() -> Path:
    return Path(os.environ.get("LEJEPA_RESULTS", "results"))


def logs_dir(results_root: Path, experiment: str) -> Path:
    return Path(results_root) / experiment / "logs"


# ------------------------------------------------------------------------------------------ the job


class RunJob(submitit.helpers.Checkpointable):
    """What every executor runs for one spec. Checkpointable: on preemption or timeout submitit
    resubmits this same call, and run_job resumes from the newest checkpoint under the run folder."""

    def __call__(self, spec: RunSpec, results_root: str) -> dict:
        from slurm.job import run_job  # the heavy imports happen in the job, not in the launcher

        _limit_threads(spec)
        _init_distributed()
        import torch

        ckpts = checkpoint_paths(run_dir(Path(results_root), spec.experiment, spec.run_id) / "ckpt")
        attempt = int(os.environ.get("SLURM_RESTART_COUNT", "0")) + 1
        resume = f"resuming from {ckpts[0].name}" if ckpts else "no checkpoint yet, starting from step 0"
        print(f"lejepa: run {spec.run_id} attempt {attempt} on {os.uname().nodename} with "
              f"{torch.get_num_threads()} CPU thread(s): {resume}", flush=True)
        return run_job(spec, results_root, progress=False)


# Lines run by each SLURM job before its tasks start. Thread pools (torch, OpenMP, MKL, OpenBLAS) size
# themselves from these variables, else from all the node's cores. Slurm 22.05 no longer passes the job's
# --cpus-per-task on to srun (SRUN_CPUS_PER_TASK restores it), so a node that binds tasks to CPUs would
# otherwise give the task one CPU.
JOB_SETUP = [
    "export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-1}",
    *(f"export {name}=${{SLURM_CPUS_PER_TASK:-1}}" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                                 "OPENBLAS_NUM_THREADS")),
]


def _limit_threads(spec: RunSpec) -> None:
    """In a submitted job, use the CPUs the job asked for: a node without CPU binding (or several local
    jobs at once) would otherwise have every job start one thread per core of the machine."""
    if os.environ.get("SUBMITIT_EXECUTOR") not in ("local", "slurm") or "OMP_NUM_THREADS" in os.environ:
        return
    import torch

    torch.set_num_threads(int(os.environ.get("SLURM_CPUS_PER_TASK") or spec.resources.cpus_per_task))


def _init_distributed() -> None:
    """Several tasks (nodes x tasks_per_node > 1): one process group over all of them, for DDP."""
    if os.environ.get("SUBMITIT_EXECUTOR") not in ("local", "slurm"):
        return
    env = submitit.JobEnvironment()
    import torch
    import torch.distributed as dist

    if env.num_tasks <= 1 or dist.is_initialized():
        return
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    if torch.cuda.is_available():
        torch.cuda.set_device(env.local_rank % torch.cuda.device_count())
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


# ------------------------------------------------------------------------------------------- ledger


def ledger_path(results_root: Path, experiment: str) -> Path:
    return Path(results_root) / experiment / LEDGER_NAME


def read_ledger(results_root: Path, experiment: str) -> dict:
    path = ledger_path(results_root, experiment)
    if not path.exists():
        return {"runs": {}, "launches": []}
    return json.loads(path.read_text())


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two `lejepa launch` at once: one waits, neither loses entries
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_ledger(results_root: Path, experiment: str, entries: dict[str, dict],
                  launch: dict | None = None) -> None:
    """Add or replace runs' job entries, and note a launch (when given) in the launch history."""
    path = ledger_path(results_root, experiment)
    with _locked(path):
        ledger = read_ledger(results_root, experiment)
        for run_id, entry in entries.items():
            previous = ledger["runs"].get(run_id)
            if previous:
                entry["previous_jobs"] = [*previous.get("previous_jobs", []), previous["job_id"]][-10:]
            ledger["runs"][run_id] = entry
        if launch:
            ledger["launches"] = [*ledger.get("launches", []), launch][-50:]
        payload = json.dumps(ledger, indent=2, sort_keys=True).encode()
        atomic_write_bytes(path, lambda f: f.write(payload))


# ----------------------------------------------------------------------------------------- job states


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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


def _local_alive(entry: dict) -> bool:
    if entry.get("host") != os.uname().nodename:
        return False
    try:
        os.kill(int(entry["job_id"]), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def live_jobs(results_root: Path, experiment: str, run_ids: list[str]) -> dict[str, tuple[str, str]]:
    """run_id -> ("pending"|"running"|"unknown", detail) for runs whose latest job is still queued or
    running, or whose SLURM job cannot be checked."""
    ledger = read_ledger(results_root, experiment)["runs"]
    entries = {run_id: ledger[run_id] for run_id in run_ids if run_id in ledger}
    slurm_ids = [e["job_id"] for e in entries.values() if e.get("executor") == "slurm"]
    queue = slurm_states(slurm_ids)
    live = {}
    for run_id, entry in entries.items():
        if entry.get("executor") == "slurm" and queue is None:  # cannot tell: never risk a double submission
            live[run_id] = ("unknown", f"job {entry['job_id']}: squeue cannot be reached to check it")
        elif entry.get("executor") == "slurm" and entry["job_id"] in queue:
            state, reason = queue[entry["job_id"]]
            if state in QUEUED_STATES:
                live[run_id] = ("pending", f"job {entry['job_id']} queued ({reason or state})")
            elif state in RUNNING_STATES:
                live[run_id] = ("running", f"job {entry['job_id']} {state.lower()}")
        elif entry.get("executor") == "local" and _local_alive(entry):
            live[run_id] = ("running", f"local job {entry['job_id']}")
    return live


# ------------------------------------------------------------------------------------------ planning


@dataclass
class LaunchPlan:
    to_run: list[RunSpec]
    done: list[RunSpec] = field(default_factory=list)
    live: dict[str, tuple[str, str]] = field(default_factory=dict)  # run_id -> (state, detail)


def run_status(results_root: Path, experiment: str, run_id: str) -> str | None:
    """The status a run's record says, None without a record, "unreadable" for a record that is not."""
    path = record_path(results_root, experiment, run_id)
    if not path.exists():
        return None
    try:
        return read_record(path).get("status")
    except (ValueError, OSError):  # unreadable or newer schema: treat as not done, never overwrite blindly
        return "unreadable"


def record_status(results_root: Path, spec: RunSpec) -> str | None:
    return run_status(results_root, spec.experiment, spec.run_id)


def source_status(results_root: Path, reference: str) -> str:
    """Status of the run a model.init_from reference ('EXPERIMENT/RUN_ID') names, in words."""
    experiment, _, run_id = reference.partition("/")
    return run_status(results_root, experiment, run_id) or "not run yet"


def plan_launch(manifest: Manifest, results_root: Path, force: bool = False) -> LaunchPlan:
    """Which runs a launch would submit; reads the results folder, changes nothing."""
    live = live_jobs(results_root, manifest.name, [s.run_id for s in manifest.runs])
    plan = LaunchPlan(to_run=[])
    for spec in manifest.runs:
        if spec.run_id in live:
            plan.live[spec.run_id] = live[spec.run_id]
        elif record_status(results_root, spec) == "done" and not force:
            plan.done.append(spec)
        else:
            plan.to_run.append(spec)
    return plan


def sbatch_parameters(resources: ResourceSpec, experiment: str, parallelism: int | None) -> dict:
    """submitit AutoExecutor parameters for one resources block (unset optional fields are left out)."""
    params: dict = {
        "name": f"lejepa-{experiment}", "nodes": resources.nodes, "tasks_per_node": resources.tasks_per_node,
        "cpus_per_task": resources.cpus_per_task, "mem_gb": resources.mem_gb, "timeout_min": resources.time_min,
    }
    if resources.gpus_per_node:  # a gres request on a cluster without GPUs would be refused
        params["gpus_per_node"] = resources.gpus_per_node
    for key in ("partition", "account", "constraint", "qos"):
        if getattr(resources, key):
            params[f"slurm_{key}"] = getattr(resources, key)
    if parallelism:
        params["slurm_array_parallelism"] = parallelism
    return params


def sbatch_flags(params: dict, array_size: int) -> str:
    """The same parameters as the #SBATCH lines they become (for --dry-run)."""
    names = {"name": "job-name", "tasks_per_node": "ntasks-per-node", "timeout_min": "time",
             "mem_gb": "mem", "slurm_array_parallelism": None}
    flags = []
    for key, value in params.items():
        flag = names.get(key, key.removeprefix("slurm_").replace("_", "-"))
        if flag is None:
            continue
        flags.append(f"--{flag}={value}G" if key == "mem_gb" else f"--{flag.replace('_', '-')}={value}")
    cap = params.get("slurm_array_parallelism")
    flags.append(f"--array=0-{array_size - 1}" + (f"%{cap}" if cap else ""))
    return " ".join(flags)


def group_by_resources(specs: list[RunSpec]) -> list[tuple[ResourceSpec, list[RunSpec]]]:
    """A job array shares one set of resources, so runs are grouped by their resources block."""
    groups: dict[ResourceSpec, list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.resources, []).append(spec)
    return list(groups.items())


def gpu_hours(specs: list[RunSpec]) -> float:
    """Upper bound: every run uses its whole time limit on all its GPUs."""
    return sum(s.resources.nodes * s.resources.gpus_per_node * s.resources.time_min / 60 for s in specs)


# ------------------------------------------------------------------------------------------- launch


@dataclass
class LaunchOutcome:
    plan: LaunchPlan
    submitted: dict[str, str] = field(default_factory=dict)  # run_id -> job id
    failed: dict[str, str] = field(default_factory=dict)  # run_id -> reason (local and debug executors)


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


def check_executor(manifest: Manifest, executor: str, specs: list[RunSpec]) -> None:
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
                f"{manifest.path}: {len(multi)} run(s) ask for resources.nodes > 1 (e.g. {multi[0]}), but the "
                f"{executor} executor runs on this machine only: use --executor slurm, or resources.nodes=1."
            )


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


def launch(manifest: Manifest, results_root: Path, executor: str = "local", force: bool = False,
           parallelism: int | None = None, echo: Callable[[str], None] = print) -> LaunchOutcome:
    """Submit every run that is not done (or all with force). Local and debug block until done."""
    results_root = Path(results_root)
    plan = plan_launch(manifest, results_root, force)
    check_executor(manifest, executor, plan.to_run)
    check_transfer_sources(results_root, plan.to_run)
    outcome = LaunchOutcome(plan)
    if not plan.to_run:
        return outcome
    ensure_records_writable(results_root, manifest.name)
    if force:
        for spec in plan.to_run:
            aside = set_aside_previous(results_root, spec)
            if aside:
                echo(f"--force: earlier outputs of {spec.run_id} moved to {aside}")
    folder = logs_dir(results_root, manifest.name)
    launch_info = {"time": _now(), "executor": executor, "runs": len(plan.to_run),
                   "parallelism": parallelism or (1 if executor == "local" else None)}
    if executor == "slurm":
        _launch_slurm(manifest, results_root, folder, plan.to_run, parallelism, outcome, launch_info, echo)
    elif executor == "local":
        _launch_local(manifest, results_root, folder, plan.to_run, parallelism or 1, outcome, launch_info, echo)
    else:
        _launch_debug(manifest, results_root, folder, plan.to_run, outcome, launch_info, echo)
    return outcome


def _entry(job: submitit.Job, executor: str) -> dict:
    return {"job_id": str(job.job_id), "executor": executor, "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr), "submitted": _now(), "host": os.uname().nodename}


def _launch_slurm(manifest, results_root, folder, specs, parallelism, outcome, launch_info, echo) -> None:
    for resources, group in group_by_resources(specs):
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(**sbatch_parameters(resources, manifest.name, parallelism), slurm_setup=JOB_SETUP)
        jobs = executor.map_array(RunJob(), group, [str(results_root)] * len(group))
        entries = {spec.run_id: _entry(job, "slurm") for spec, job in zip(group, jobs)}
        update_ledger(results_root, manifest.name, entries, {**launch_info, "array": jobs[0].job_id.split("_")[0]})
        outcome.submitted.update({run_id: e["job_id"] for run_id, e in entries.items()})
        what = f"job array {jobs[0].job_id.split('_')[0]} ({len(group)} tasks)" if len(group) > 1 else (
            f"job {jobs[0].job_id}")  # submitit submits a one-task array as a plain job
        echo(f"submitted {what}; logs in {folder}")


def _visible_gpus(slot: int, per_job: int) -> tuple[int, ...]:
    """Local jobs running side by side get disjoint GPUs when the machine has enough of them."""
    if per_job == 0:
        return ()
    import torch

    count = torch.cuda.device_count()
    if count >= (slot + 1) * per_job:
        return tuple(range(slot * per_job, (slot + 1) * per_job))
    return tuple(range(min(per_job, count)))


def _launch_local(manifest, results_root, folder, specs, parallelism, outcome, launch_info, echo) -> None:
    """Subprocesses on this machine, at most `parallelism` at a time (submitit's LocalExecutor starts
    every job it is given at once, so jobs are handed over one by one as slots free up)."""
    import torch

    gpus_here = torch.cuda.device_count()
    waiting = list(specs)
    running: dict[int, tuple[RunSpec, submitit.Job]] = {}
    update_ledger(results_root, manifest.name, {}, launch_info)
    try:
        while waiting or running:
            for slot in [s for s in range(parallelism) if s not in running]:
                if not waiting:
                    break
                spec = waiting.pop(0)
                if spec.resources.gpus_per_node > gpus_here:
                    echo(f"note: {spec.run_id} asks for {spec.resources.gpus_per_node} GPU(s) per node; this machine "
                         f"has {gpus_here}, so it gets {gpus_here}")
                executor = submitit.LocalExecutor(folder=folder)
                gpus = _visible_gpus(slot, min(spec.resources.gpus_per_node, gpus_here))
                executor.update_parameters(timeout_min=spec.resources.time_min, gpus_per_node=len(gpus),
                                           tasks_per_node=spec.resources.tasks_per_node, visible_gpus=gpus)
                job = executor.submit(RunJob(), spec, str(results_root))
                running[slot] = (spec, job)
                update_ledger(results_root, manifest.name, {spec.run_id: _entry(job, "local")})
                outcome.submitted[spec.run_id] = str(job.job_id)
                echo(f"started {spec.run_id} (local job {job.job_id}); log {job.paths.stderr}")
            for slot, (spec, job) in list(running.items()):
                if job.done():
                    del running[slot]
                    _collect(job, spec, results_root, outcome, echo)
            time.sleep(0.5)
    except KeyboardInterrupt:
        for spec, job in running.values():
            job.cancel(check=False)
            echo(f"interrupted {spec.run_id}; relaunch to resume it from its newest checkpoint")
        raise


def _launch_debug(manifest, results_root, folder, specs, outcome, launch_info, echo) -> None:
    """In this process, one run after another (submitit's DebugExecutor: breakpoints work)."""
    update_ledger(results_root, manifest.name, {}, launch_info)
    for spec in specs:
        executor = submitit.DebugExecutor(folder=folder)
        job = executor.submit(RunJob(), spec, str(results_root))
        update_ledger(results_root, manifest.name, {spec.run_id: _entry(job, "debug")})  # for `lejepa status`
        outcome.submitted[spec.run_id] = str(job.job_id)
        echo(f"running {spec.run_id} in this process")
        _collect(job, spec, results_root, outcome, echo)


def _collect(job: submitit.Job, spec: RunSpec, results_root: Path, outcome: LaunchOutcome, echo) -> None:
    try:
        record = job.result()
        status = record.get("status", "done") if isinstance(record, dict) else "done"
    except Exception as error:  # noqa: BLE001  any failure of the job itself: reported, the rest go on
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        outcome.failed[spec.run_id] = reason
        echo(f"FAILED {spec.run_id}: {reason}; log {job.paths.stderr}")
        return
    if status != "done":
        outcome.failed[spec.run_id] = status
    echo(f"{status} {spec.run_id}: record {record_path(results_root, spec.experiment, spec.run_id)}")


def ensure_records_writable(results_root: Path, experiment: str) -> None:
    """Fail before submitting anything when the results folder cannot be written."""
    folder = Path(results_root) / experiment
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LaunchError(f"cannot create the results folder {folder}: {error.strerror}; use --results DIR") from None
    if not os.access(folder, os.W_OK):
        raise LaunchError(f"the results folder {folder} is not writable; use --results DIR")



# ------------------------------------------------------------------------------------------- status


@dataclass
class RunState:
    spec: RunSpec
    state: str  # done, running, pending, failed, diverged (unknown: the queue could not be asked)
    detail: str
    log: str | None = None
    seconds: float | None = None  # pretraining + evaluation wall time, for finished runs


def _last_metrics(results_root: Path, spec: RunSpec) -> str:
    path = run_dir(results_root, spec.experiment, spec.run_id) / "metrics.jsonl"
    try:
        last = path.read_text().strip().splitlines()[-1]
        values = json.loads(last)
        return f", step {values['step']}, loss {values['loss']:.4g}"
    except (OSError, IndexError, ValueError, KeyError, TypeError):
        return ""


def _last_log_line(path: str | None) -> str:
    """The end of a job's stderr: where a crash without a record (killed, out of memory) says why."""
    if not path or not Path(path).is_file():
        return "no log"
    lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "empty log"


def collect_status(manifest: Manifest, results_root: Path) -> list[RunState]:
    """Each run's state from its record (the source of truth), else from its job in the ledger."""
    results_root = Path(results_root)
    ledger = read_ledger(results_root, manifest.name)["runs"]
    live = live_jobs(results_root, manifest.name, [s.run_id for s in manifest.runs])
    states = []
    for spec in manifest.runs:
        entry = ledger.get(spec.run_id, {})
        log = entry.get("stderr")
        path = record_path(results_root, spec.experiment, spec.run_id)
        if spec.run_id in live:  # a job in flight (a rerun, say) outranks an older record
            state, detail = live[spec.run_id]
            states.append(RunState(spec, state, detail + _last_metrics(results_root, spec), log))
        elif path.exists():
            states.append(_state_from_record(spec, path, log))
        elif not entry:
            states.append(RunState(spec, "pending", "not submitted yet"))
        else:
            states.append(RunState(spec, "failed", f"job {entry['job_id']} ended without a record: "
                                                   f"{_last_log_line(log)}", log))
    return states


def _state_from_record(spec: RunSpec, path: Path, log: str | None) -> RunState:
    try:
        record = read_record(path)
    except (ValueError, OSError) as error:
        return RunState(spec, "failed", f"record {path} unreadable: {error}", log)
    status = record.get("status", "failed")
    seconds = None
    if status == "done":
        pretrain = record.get("pretrain", {}).get("wall_seconds") or 0.0
        seconds = pretrain + (record.get("evaluation", {}).get("wall_seconds") or 0.0)
        top1 = record.get("evaluation", {}).get("linear_top1")
        detail = f"linear top-1 {top1:.4f}" if isinstance(top1, (int, float)) else "done"
    else:
        detail = record.get("reason") or "no reason recorded"
    return RunState(spec, status, detail, log, seconds)


def eta_estimate(states: list[RunState]) -> str:
    """Remaining time from the mean wall time of finished runs; says how it was computed."""
    finished = [s.seconds for s in states if s.seconds]
    left = [s for s in states if s.state in ("pending", "running")]
    if not left:
        return "ETA: nothing left to run" + (" (failed runs need a relaunch)" if any(
            s.state == "failed" for s in states) else "")
    if not finished:
        return f"ETA: unknown until a run finishes ({len(left)} run(s) left)"
    mean = sum(finished) / len(finished)
    parallel = max(1, sum(s.state == "running" for s in states))
    total = mean * len(left) / parallel
    return (f"ETA: about {_duration(total)} = {len(left)} run(s) left x {_duration(mean)} mean wall time "
            f"(pretraining + evaluation, of {len(finished)} done run(s)) / {parallel} running at once; "
            f"queue waits not included")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
