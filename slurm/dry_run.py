"""`lejepa launch --dry-run`: what a launch would submit and with which resources; nothing is written."""

from __future__ import annotations

from pathlib import Path

from lejepa.spec import RunSpec
from slurm.plan import LaunchPlan, source_status
from slurm.sbatch import gpu_hours, group_by_resources, sbatch_flags, sbatch_parameters


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows])


def describe_dry_run(experiment: str, specs: list[RunSpec], plan: LaunchPlan, *, source: str, description: str,
                     results_root: Path, executor: str, parallelism: int | None) -> str:
    skip = ({s.run_id: "done (skip)" for s in plan.done} | {k: f"{v[0]} (skip)" for k, v in plan.live.items()}
            | {k: "newer record (skip)" for k in plan.kept} | {k: "to run (record unusable)" for k in plan.unusable})
    lines = [f"manifest {source}: experiment '{experiment}'" + (f" - {description.strip()}" if description.strip() else "")]
    rows = [[spec.run_id, spec.method_name, spec.data.name, spec.model.arch, str(spec.seed),
             skip.get(spec.run_id, "to run")] for spec in specs]
    lines.append(text_table(["run_id", "method", "dataset", "arch", "seed", "now"], rows))
    lines.append(f"{len(specs)} runs ({len(plan.to_run)} to run, {len(plan.done)} done, {len(plan.live)} "
                 f"queued/running); results in {Path(results_root) / experiment}")
    lines.append(f"GPU-hours: {gpu_hours(specs):.1f} for all runs, {gpu_hours(plan.to_run):.1f} for the runs to run "
                 f"(sum of nodes x gpus_per_node x resources.time_min / 60: each job's time limit, which the paper "
                 f"manifests set to the run's estimated wall time plus a margin, so a high estimate)")
    cap = parallelism if executor == "slurm" else None
    lines.append(f"sbatch parameters (--executor slurm: one job array per resources block{'' if cap else ', no cap'}):")
    for resources, group in group_by_resources(plan.to_run or specs):
        lines.append(f"  {len(group)} task(s), {gpu_hours(group):.1f} GPU-hours: "
                     f"{sbatch_flags(sbatch_parameters(resources, experiment, cap), len(group))}")
    lines += [f"record does not count, the run would go again (a launch sets the file aside, kept): {why}"
              for why in plan.unusable.values()]
    lines += [f"not run: {why}" for why in plan.kept.values()]
    lines += _weight_sources(specs, results_root)
    if executor != "slurm":
        lines.append(f"executor {executor}: {parallelism or 1} run(s) at a time on this machine")
    lines.append("dry run: nothing submitted")
    return "\n".join(lines)


def _weight_sources(specs: list[RunSpec], results_root: Path) -> list[str]:
    """Runs with model.init_from evaluate another run's weights: say which, and whether they exist yet."""
    users: dict[str, int] = {}
    for spec in specs:
        if spec.model.init_from:
            users[spec.model.init_from] = users.get(spec.model.init_from, 0) + 1
    if not users:
        return []
    lines = ["weights from other runs (model.init_from; launch refuses them until their source is done):"]
    for reference, count in users.items():
        state = source_status(results_root, reference)
        todo = "" if state == "done" else f": launch the manifest of experiment '{reference.partition('/')[0]}' first"
        lines.append(f"  {reference}: {state}{todo} ({count} run(s) here use it)")
    return lines
