"""`lejepa`: the one command in front of the suite. It parses the command line, loads the manifest and
calls the module that does the work; nothing else happens here.

    lejepa launch MANIFEST [key=value ...] [--executor local|slurm|debug] [--dry-run] [--force]
                  [--results DIR] [--parallelism N]                                    slurm/launch.py
    lejepa run MANIFEST --only RUN_ID [key=value ...] [--force]                         evaluation/pipeline.py
    lejepa status MANIFEST [key=value ...] [--results DIR]                              slurm/status.py
    lejepa report MANIFEST [key=value ...] [--results DIR] [--out DIR] [--include-unhealthy]  evaluation/report.py
    lejepa list datasets|architectures|methods                                          the registries
    lejepa describe method|dataset|section NAME                                         experiments/describe.py
    lejepa figures list | paper [--only fig5,...] [--out DIR] [--records MANIFEST ...] [--results DIR]
                   [--checkpoint RUN_DIR]                                               evaluation/paper_figures/

Exit codes: 0 fine; 1 some run failed; 2 bad input (manifest, override, command line, missing data, an
executor that cannot host the runs). Bad input prints what is wrong, where and how to fix it, never a
traceback, and submits nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from experiments.manifest import Manifest, ManifestError, find_run, load_manifest, missing_data
from slurm.plan import LaunchError

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
    launch.add_argument("--cluster", default=None, metavar="NAME|FILE",
                        help="a cluster profile (slurm/clusters/NAME.yaml or a file; default $LEJEPA_CLUSTER): "
                             "partition, account, ... for every run, and runs fitted to its nodes")
    run = manifest_command("run", "run one run of a manifest in this process")
    run.add_argument("--only", required=True, metavar="RUN_ID", help="the run (see `lejepa launch --dry-run`)")
    run.add_argument("--force", action="store_true", help="rerun even if its record says done")
    manifest_command("status", "state of every run of a manifest, with failures' reasons and logs")
    report = manifest_command("report", "tables and figures from a manifest's records")
    report.add_argument("--out", type=Path, default=None,
                        help="where to write the report (default: the experiment's results folder)")
    report.add_argument("--include-unhealthy", action="store_true",
                        help="keep runs that did not learn (evaluation/health.py) in means and figure fits")
    listing = commands.add_parser("list", help="known datasets, architectures or methods, one a line")
    listing.add_argument("what", choices=("datasets", "architectures", "methods"))
    describe = commands.add_parser("describe", help="a method's, dataset's or spec section's options, defaults "
                                   "and ranges")
    describe.add_argument("what", choices=("method", "dataset", "section"))
    describe.add_argument("name", help="e.g. lejepa, fashion_mnist, train")
    figures = commands.add_parser("figures", help="the paper's figures: list them, or draw them")
    figures.add_argument("action", choices=("list", "paper"), help="list: every figure and what it needs; "
                         "paper: draw them as PNG and PDF with captions and a figures.md index")
    figures.add_argument("--only", default=None, metavar="ID,...", help="only these figures (e.g. fig5,fig20)")
    figures.add_argument("--out", type=Path, default=Path("results/paper_figures"),
                         help="output folder (default results/paper_figures)")
    figures.add_argument("--records", action="append", default=[], metavar="MANIFEST",
                         help="draw the data figures from this manifest's records (repeatable: the records "
                              "of every one given are pooled; e.g. loss_accuracy_cpu, paper/table7)")
    figures.add_argument("--results", type=Path, default=None,
                         help="results root the records are read from (default: $LEJEPA_RESULTS, else ./results)")
    figures.add_argument("--checkpoint", type=Path, default=None, metavar="RUN_DIR",
                         help="a ViT run folder (results/EXPERIMENT/RUN_ID) or checkpoint file, for fig14")
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
    try:
        return COMMANDS[args.command](args)
    except (ManifestError, LaunchError) as error:
        print(f"lejepa {args.command}: error:\n{error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _results_root(args) -> Path:
    if args.results is not None:
        return args.results
    return Path(os.environ.get("LEJEPA_RESULTS", "results"))


def _require_data(manifest: Manifest, runs=None) -> None:
    problems = missing_data(manifest, runs)
    if problems:
        raise ManifestError(problems)


def cmd_launch(args) -> int:
    from slurm.dry_run import describe_dry_run
    from slurm.launch import launch
    from slurm.plan import plan_launch
    from slurm.sbatch import gpu_hours

    manifest = load_manifest(args.manifest, args.overrides)
    results_root, specs = _results_root(args), _fit_to_cluster(list(manifest.runs), args.cluster)
    if args.dry_run:
        plan = plan_launch(manifest.name, specs, results_root)
        print(describe_dry_run(manifest.name, specs, plan, source=str(manifest.path),
                               description=manifest.description, results_root=results_root,
                               executor=args.executor, parallelism=args.parallelism))
        return EXIT_OK
    _require_data(manifest)
    plan, outcome = launch(manifest.name, specs, results_root, source=str(manifest.path), executor=args.executor,
                           force=args.force, parallelism=args.parallelism)
    print(f"{manifest.name}: {len(outcome.submitted)} run(s) submitted with the {args.executor} executor, "
          f"{len(plan.done)} already done (skipped), {len(plan.live)} still queued or running (skipped)"
          + (f", {len(plan.kept)} with a record of a newer schema (skipped)" if plan.kept else ""))
    if outcome.submitted:
        print(f"GPU-hours requested (upper bound from time limits): {gpu_hours(plan.to_run):.1f}")
    if args.executor == "slurm" and outcome.submitted:
        print(f"follow with: lejepa status {args.manifest} --results {results_root}")
    if outcome.failed:
        print(f"{len(outcome.failed)} run(s) did not finish as done; see `lejepa status {args.manifest}`",
              file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _fit_to_cluster(specs: list, cluster: str | None) -> list:
    from slurm.cluster import load_profile

    profile = load_profile(cluster)
    if profile is None:
        return specs
    fitted = []
    for spec in specs:
        spec, notes = profile.apply(spec)
        fitted.append(spec)
        for note in notes:
            print(f"cluster {profile.name}: {note}")
    return fitted


def cmd_run(args) -> int:
    from evaluation.pipeline import run_job
    from lejepa.run_lock import is_locked
    from slurm.job import limit_threads
    from slurm.plan import record_state, set_aside_previous

    manifest = load_manifest(args.manifest, args.overrides)
    spec = find_run(manifest, args.only)
    _require_data(manifest, [spec])
    results_root = _results_root(args)
    holder = is_locked(results_root / spec.experiment / spec.run_id)
    if holder:  # checked before --force could move a live trainer's files away
        print(f"{spec.run_id} is being trained now by {holder} (it holds the run folder's lock): not started "
              f"again. Wait for it (`lejepa status {args.manifest}`), or stop that process first", file=sys.stderr)
        return EXIT_FAILED
    status, problem = record_state(results_root, spec.experiment, spec.run_id)
    if status in ("done", "newer"):
        if not args.force and status == "done":
            print(f"{spec.run_id} is already done ({results_root / spec.experiment / spec.run_id}); "
                  f"--force reruns it from scratch")
            return EXIT_OK
        if not args.force:
            print(f"not run: {problem}; --force reruns it (the record is moved aside, kept)", file=sys.stderr)
            return EXIT_FAILED
        print(f"--force: earlier outputs moved to {set_aside_previous(results_root, spec)}")
    limit_threads(spec)  # the same CPU threads as the launched job: the same numbers
    try:
        record = run_job(spec, results_root, progress=True)
    except Exception:  # noqa: BLE001  a crash inside the run: its record says failed; show the trace
        traceback.print_exc()
        print(f"run {spec.run_id} failed; record in {results_root / spec.experiment / spec.run_id}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{spec.run_id}: {record.get('status')}" + (f" ({record['reason']})" if record.get("reason") else ""))
    return EXIT_OK if record.get("status") == "done" else EXIT_FAILED


def cmd_status(args) -> int:
    from slurm.dry_run import text_table
    from slurm.status import collect_status, eta_estimate

    manifest = load_manifest(args.manifest, args.overrides)
    results_root = _results_root(args)
    states = collect_status(manifest.name, list(manifest.runs), results_root)
    rows = [[s.spec.run_id, s.state, s.detail + (f" (log {s.log})" if s.log and s.state == "failed" else "")]
            for s in states]
    print(f"{manifest.name}: {len(states)} runs, results in {results_root / manifest.name}")
    print(text_table(["run_id", "state", "detail"], rows))
    counts = {state: sum(s.state == state for s in states) for state in dict.fromkeys(s.state for s in states)}
    print("counts: " + ", ".join(f"{state} {n}" for state, n in counts.items()))
    print(eta_estimate(states))
    return EXIT_OK


def cmd_report(args) -> int:
    from evaluation.report import report_study

    manifest = load_manifest(args.manifest, args.overrides)
    results_root = _results_root(args)
    out_dir = args.out or results_root / manifest.name
    if not _writable(out_dir):
        raise ManifestError([(f"cannot write the report to {out_dir} (read-only or not creatable); "
                             f"give another folder with --out DIR")])
    if not report_study(manifest.name, [s.run_id for s in manifest.runs], results_root, out_dir,
                        include_unhealthy=args.include_unhealthy):
        print(f"no records yet for {manifest.name} in {results_root / manifest.name}; "
              f"run `lejepa launch {args.manifest}` first", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def cmd_list(args) -> int:
    if args.what == "datasets":
        from lejepa.data import DATASETS

        names = sorted(DATASETS)
    elif args.what == "methods":
        from lejepa.methods import METHODS

        names = sorted(METHODS)
    else:
        from lejepa.architectures import curated_architectures

        names = [entry["name"] for entry in curated_architectures()]
    print("\n".join(names))
    return EXIT_OK


def cmd_describe(args) -> int:
    from experiments.describe import describe

    try:
        print(describe(args.what, args.name))
    except KeyError as error:
        print(f"lejepa describe: error: {error.args[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def cmd_figures(args) -> int:
    from evaluation.paper_figures import main_list, write_paper_figures
    from evaluation.paper_figures.data_figures import figure_inputs

    if args.action == "list":
        print(main_list())
        return EXIT_OK
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    results_root = _results_root(args)
    records = _study_records(args.records, results_root)
    records_by_figure, options = figure_inputs(records, results_root if args.records else None, args.checkpoint)
    try:
        paths = write_paper_figures(args.out, only, records_by_figure, options)
    except ValueError as error:  # an unknown figure id: the message lists the known ones
        print(f"lejepa figures: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in paths:
        print(f"wrote {path}")
    return EXIT_OK


def _study_records(manifests: list[str], results_root: Path) -> list[dict]:
    """The records of each manifest's current runs under results_root, pooled; unusable files named."""
    from evaluation.record import read_records

    pooled: list[dict] = []
    for name in manifests:
        manifest = load_manifest(name)
        found, problems = read_records(results_root, manifest.name)
        for problem in problems:
            print(f"left out: {problem}", file=sys.stderr)
        wanted = {spec.run_id for spec in manifest.runs}
        kept = [r for r in found if r["run_id"] in wanted]
        print(f"{name}: {len(kept)} of {len(wanted)} runs have records in {results_root / manifest.name}")
        pooled += kept
    return pooled


COMMANDS = {"launch": cmd_launch, "run": cmd_run, "status": cmd_status, "report": cmd_report, "list": cmd_list,
            "describe": cmd_describe, "figures": cmd_figures}

if __name__ == "__main__":
    sys.exit(main())
