"""`lejepa`: the one command in front of the suite (DESIGN.md section 1).

    lejepa launch MANIFEST [key=value ...] [--executor local|slurm|debug] [--dry-run] [--force]
                  [--results DIR] [--parallelism N]
    lejepa run MANIFEST --only RUN_ID [key=value ...]
    lejepa status MANIFEST [key=value ...] [--results DIR]
    lejepa report MANIFEST [key=value ...] [--results DIR]
    lejepa list datasets|architectures|methods

Exit codes: 0 fine; 1 some run failed; 2 bad input (manifest, override, command line, missing data,
an executor that cannot host the runs). Bad input prints what is wrong, where and how to fix it, never a
traceback, and submits nothing.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from experiments.manifest import EXPERIMENTS_DIR, Manifest, ManifestError, load_manifest, missing_data

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lejepa", description="LeJEPA reproduction and benchmarking suite")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def manifest_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("manifest", help="a manifest file, or a name under experiments/ (e.g. quickstart)")
        sub.add_argument("overrides", nargs="*", metavar="key=value",
                         help="override for every run, e.g. train.lr=1e-3 method.lamb=0.1 (YAML values)")
        sub.add_argument("--results", type=Path, default=None,
                         help="results root (default: $LEJEPA_RESULTS, else ./results)")
        return sub

    launch = manifest_command("launch", "validate, expand and submit a manifest's runs")
    launch.add_argument("--executor", choices=("local", "slurm", "debug"), default="local",
                        help="local: subprocesses on this machine (default); slurm: one job array; "
                             "debug: in this process")
    launch.add_argument("--dry-run", action="store_true", help="validate and print the runs; submit nothing")
    launch.add_argument("--force", action="store_true",
                        help="rerun done runs from scratch (earlier outputs are moved aside, not deleted)")
    launch.add_argument("--parallelism", type=_positive_int, default=None,
                        help="local: jobs at once (default 1); slurm: array tasks at once (default: no cap)")
    run = manifest_command("run", "run one run of a manifest in this process")
    run.add_argument("--only", required=True, metavar="RUN_ID", help="the run (see `lejepa launch --dry-run`)")
    run.add_argument("--force", action="store_true", help="rerun even if its record says done")
    manifest_command("status", "state of every run of a manifest, with failures' reasons and logs")
    manifest_command("report", "tables and figures from a manifest's records")
    listing = commands.add_parser("list", help="known datasets, architectures or methods, one a line")
    listing.add_argument("what", choices=("datasets", "architectures", "methods"))
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # Overrides may come after options too (`launch m --dry-run train.lr=1e-3`): argparse leaves those
    # in the unknown arguments, where only key=value words are accepted.
    args, extra = parser.parse_known_args(argv)
    stray = [word for word in extra if word.startswith("-") or "=" not in word or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    from slurm.launcher import LaunchError

    try:
        return COMMANDS[args.command](args)
    except (ManifestError, LaunchError) as error:
        print(f"lejepa {args.command}: error:\n{error}", file=sys.stderr)
        return EXIT_BAD_INPUT


# ------------------------------------------------------------------------------------------ commands


def _results_root(args) -> Path:
    from slurm.launcher import results_root_default

    return args.results if args.results is not None else results_root_default()


def _require_data(manifest: Manifest, runs=None) -> None:
    problems = missing_data(manifest, runs)
    if problems:
        raise ManifestError(problems)


def cmd_launch(args) -> int:
    from slurm.launcher import gpu_hours, launch, plan_launch

    manifest = load_manifest(args.manifest, args.overrides)
    results_root = _results_root(args)
    if args.dry_run:
        _print_dry_run(manifest, results_root, args.executor, args.parallelism, plan_launch(manifest, results_root))
        return EXIT_OK
    _require_data(manifest)
    outcome = launch(manifest, results_root, args.executor, args.force, args.parallelism)
    plan = outcome.plan
    print(f"{manifest.name}: {len(outcome.submitted)} run(s) submitted with the {args.executor} executor, "
          f"{len(plan.done)} already done (skipped), {len(plan.live)} still queued or running (skipped)")
    if outcome.submitted:
        print(f"GPU-hours requested (upper bound from time limits): {gpu_hours(plan.to_run):.1f}")
    if args.executor == "slurm" and outcome.submitted:
        print(f"follow with: lejepa status {args.manifest} --results {results_root}")
    if outcome.failed:
        print(f"{len(outcome.failed)} run(s) did not finish as done; see `lejepa status {args.manifest}`",
              file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _print_dry_run(manifest: Manifest, results_root: Path, executor: str, parallelism, plan) -> None:
    from slurm.launcher import gpu_hours, group_by_resources, sbatch_flags, sbatch_parameters

    skip = {s.run_id: "done (skip)" for s in plan.done} | {k: f"{v[0]} (skip)" for k, v in plan.live.items()}
    print(f"manifest {manifest.path}: experiment '{manifest.name}'"
          + (f" - {manifest.description.strip()}" if manifest.description.strip() else ""))
    rows = [[spec.run_id, spec.method_name, spec.data.name, spec.model.arch, str(spec.seed),
             skip.get(spec.run_id, "to run")] for spec in manifest.runs]
    print(_table(["run_id", "method", "dataset", "arch", "seed", "now"], rows))
    print(f"{len(manifest.runs)} runs ({len(plan.to_run)} to run, {len(plan.done)} done, "
          f"{len(plan.live)} queued/running); results in {Path(results_root) / manifest.name}")
    print(f"GPU-hours: {gpu_hours(list(manifest.runs)):.1f} for all runs, {gpu_hours(plan.to_run):.1f} for the runs "
          f"to run (sum of nodes x gpus_per_node x resources.time_min / 60: each job's time limit, which the "
          f"paper manifests set to the run's estimated wall time plus a margin, so a high estimate)")
    cap = parallelism if executor == "slurm" else None
    print(f"sbatch parameters (--executor slurm: one job array per resources block{'' if cap else ', no cap'}):")
    for resources, group in group_by_resources(plan.to_run or list(manifest.runs)):
        print(f"  {len(group)} task(s), {gpu_hours(group):.1f} GPU-hours: "
              f"{sbatch_flags(sbatch_parameters(resources, manifest.name, cap), len(group))}")
    _print_weight_sources(manifest, results_root)
    if executor != "slurm":
        print(f"executor {executor}: {parallelism or 1} run(s) at a time on this machine")
    print("dry run: nothing submitted")


def _print_weight_sources(manifest: Manifest, results_root: Path) -> None:
    """Runs with model.init_from evaluate another run's weights: say which, and whether they exist yet."""
    from slurm.launcher import source_status

    users: dict[str, int] = {}
    for spec in manifest.runs:
        if spec.model.init_from:
            users[spec.model.init_from] = users.get(spec.model.init_from, 0) + 1
    if not users:
        return
    print("weights from other runs (model.init_from; launch refuses them until their source is done):")
    for reference, count in users.items():
        experiment = reference.partition("/")[0]
        state = source_status(results_root, reference)
        todo = "" if state == "done" else f": launch the manifest of experiment '{experiment}' first"
        print(f"  {reference}: {state}{todo} ({count} run(s) here use it)")


def cmd_run(args) -> int:
    from slurm.launcher import record_status, set_aside_previous

    manifest = load_manifest(args.manifest, args.overrides)
    spec = _find_run(manifest, args.only)
    _require_data(manifest, [spec])
    results_root = _results_root(args)
    if record_status(results_root, spec) == "done":
        if not args.force:
            print(f"{spec.run_id} is already done ({results_root / spec.experiment / spec.run_id}); "
                  f"--force reruns it from scratch")
            return EXIT_OK
        print(f"--force: earlier outputs moved to {set_aside_previous(results_root, spec)}")
    from slurm.job import run_job

    try:
        record = run_job(spec, results_root, progress=True)
    except Exception:  # noqa: BLE001  a crash inside the run: its record says failed; show the trace
        traceback.print_exc()
        print(f"run {spec.run_id} failed; record in {results_root / spec.experiment / spec.run_id}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{spec.run_id}: {record.get('status')}" + (f" ({record['reason']})" if record.get("reason") else ""))
    return EXIT_OK if record.get("status") == "done" else EXIT_FAILED


def _find_run(manifest: Manifest, wanted: str):
    """Exact run_id, or a unique prefix of one."""
    spec = manifest.find(wanted)
    if spec is not None:
        return spec
    matches = [s for s in manifest.runs if s.run_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    import difflib

    ids = [s.run_id for s in manifest.runs]
    close = matches[:5] and [s.run_id for s in matches[:5]] or difflib.get_close_matches(wanted, ids, n=3, cutoff=0.4)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    what = "matches several runs" if matches else "is not a run of this manifest"
    raise ManifestError([(f"{manifest.path}: --only {wanted} {what}{hint} (`lejepa launch {manifest.path} "
                         f"--dry-run` lists the {len(ids)} run ids)")])


def cmd_status(args) -> int:
    from slurm.launcher import collect_status, eta_estimate

    manifest = load_manifest(args.manifest, args.overrides)
    results_root = _results_root(args)
    states = collect_status(manifest, results_root)
    rows = [[s.spec.run_id, s.state, s.detail + (f" (log {s.log})" if s.log and s.state == "failed" else "")]
            for s in states]
    print(f"{manifest.name}: {len(states)} runs, results in {results_root / manifest.name}")
    print(_table(["run_id", "state", "detail"], rows))
    counts = {state: sum(s.state == state for s in states) for state in dict.fromkeys(s.state for s in states)}
    print("counts: " + ", ".join(f"{state} {n}" for state, n in counts.items()))
    print(eta_estimate(states))
    return EXIT_OK


def cmd_report(args) -> int:
    from evaluation.record import read_records

    manifest = load_manifest(args.manifest, args.overrides)
    results_root = _results_root(args)
    wanted = {s.run_id for s in manifest.runs}
    found = read_records(results_root, manifest.name)
    records = [r for r in found if r.get("run_id") in wanted]
    if not records:
        print(f"no records yet for {manifest.name} in {results_root / manifest.name}; "
              f"run `lejepa launch {args.manifest}` first", file=sys.stderr)
        return EXIT_FAILED
    from evaluation.report import format_console_table, write_report

    print(format_console_table(records))
    for path in write_report(manifest.name, records, results_root / manifest.name):
        print(f"wrote {path}")
    ignored = len(found) - len(records)
    print(f"{len(records)} of {len(manifest.runs)} runs have records"
          + (f"; {ignored} record(s) of runs no longer in the manifest were left out" if ignored else ""))
    return EXIT_OK


def cmd_list(args) -> int:
    if args.what == "datasets":
        from lejepa.data import DATASETS

        names = sorted(DATASETS)
    elif args.what == "methods":
        from lejepa.methods import METHODS

        names = sorted(METHODS)
    else:
        names = _architectures()
    print("\n".join(names))
    return EXIT_OK


def _architectures() -> list[str]:
    """The paper manifest's curated list when present (experiments/architectures.yaml), else all of timm."""
    curated = EXPERIMENTS_DIR / "architectures.yaml"
    if curated.is_file():
        from experiments.manifest import parse_yaml

        data = parse_yaml(curated.read_text(), str(curated))
        items = data.get("architectures") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) and "name" in i for i in items):
            raise ManifestError([f"{curated}: architectures: expected a list of mappings with a 'name' key"])
        return [str(item["name"]) for item in items]
    import timm

    return list(timm.list_models())


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


COMMANDS = {"launch": cmd_launch, "run": cmd_run, "status": cmd_status, "report": cmd_report, "list": cmd_list}

if __name__ == "__main__":
    sys.exit(main())
