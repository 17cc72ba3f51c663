"""What every executor runs for one spec: set up the process, then the one-run pipeline.

`RunJob` is submitit-Checkpointable: on preemption or timeout submitit resubmits this same call, and the
pipeline resumes from the newest checkpoint under the run folder (evaluation/pipeline.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import submitit

from lejepa.checkpoint import checkpoint_paths
from lejepa.spec import RunSpec

# Lines run by each SLURM job before its tasks start. Thread pools (torch, OpenMP, MKL, OpenBLAS) size
# themselves from these variables, else from all the node's cores. Slurm 22.05 no longer passes the job's
# --cpus-per-task on to srun (SRUN_CPUS_PER_TASK restores it), so a node that binds tasks to CPUs would
# otherwise give the task one CPU.
JOB_SETUP = [
    "export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-1}",
    *(f"export {name}=${{SLURM_CPUS_PER_TASK:-1}}" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                                 "OPENBLAS_NUM_THREADS")),
]


def limit_threads(spec: RunSpec) -> None:
    """Use the CPUs the job asked for: a node without CPU binding (or several local jobs at once) would
    otherwise have every job start one thread per core of the machine. Applies to every executor, so one
    run_id gives the same numbers whichever command ran it."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    import torch

    torch.set_num_threads(int(os.environ.get("SLURM_CPUS_PER_TASK") or spec.resources.cpus_per_task))


class RunJob(submitit.helpers.Checkpointable):
    def __call__(self, spec: RunSpec, results_root: str) -> dict:
        from evaluation.pipeline import run_job  # the heavy imports happen in the job, not in the launcher
        from lejepa.distributed import join_process_group

        limit_threads(spec)
        join_process_group(spec.train.device)
        import torch

        ckpts = checkpoint_paths(Path(results_root) / spec.experiment / spec.run_id / "ckpt")
        attempt = int(os.environ.get("SLURM_RESTART_COUNT", "0")) + 1
        resume = f"resuming from {ckpts[0].name}" if ckpts else "no checkpoint yet, starting from step 0"
        print(f"lejepa: run {spec.run_id} attempt {attempt} on {os.uname().nodename} with "
              f"{torch.get_num_threads()} CPU thread(s): {resume}", flush=True)
        return run_job(spec, results_root, progress=False)
