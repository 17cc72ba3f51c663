"""A run's resources as submitit / sbatch parameters, job arrays grouped by resources, GPU-hour totals."""

from __future__ import annotations

from lejepa.spec import ResourceSpec, RunSpec


def sbatch_parameters(resources: ResourceSpec, experiment: str, parallelism: int | None) -> dict:
    """submitit AutoExecutor parameters for one resources block (unset optional fields are left out).
    Values were checked for characters sbatch would misread when the spec was built (lejepa/spec.py)."""
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
