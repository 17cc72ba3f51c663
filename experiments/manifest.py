"""Manifests: a YAML file of defaults + a grid (+ include, + key=value overrides), expanded into RunSpecs.

This layer parses YAML, merges defaults, grid, include and overrides into one mapping per run, and reports
every problem of a manifest at once, each naming the file, the key path the bad value came from ("grid.
model.arch[1]") and the closest valid names. What is valid is decided below it: each spec section checks
its own fields (lejepa/spec.py, lejepa/options.py), lejepa/run_checks.py checks names against the
registries and the sections against each other. The format is documented in experiments/README.md.

Two additions to the grid/include format:
- A named axis: a grid key that is not a run key, whose values are mappings of run keys, sets those keys
  together, so values that belong together vary as one (an architecture and its weight decay):
      grid:
        backbone:
          - {model.arch: resnet50, train.weight_decay: 5.0e-4}
          - {model.arch: vit_small_patch16_224, train.weight_decay: 5.0e-2}
- `model.init_from` may name a manifest (`paper/in1k`): it resolves to "EXPERIMENT/RUN_ID" of the one run
  of that manifest with this run's seed, method and model (experiments/transfer_source.py).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.probes import probe_problems
from experiments.run_values import BUILT_IN, RUN_KEYS, RunValues, assign, new_run, suggest
from experiments.transfer_source import resolve_init_from
from experiments.yaml_loader import YAMLProblem, parse_yaml
from lejepa.methods import normalised
from lejepa.names import did_you_mean
from lejepa.run_checks import name_problems, run_problems
from lejepa.spec import NAME_PATTERN, SECTIONS, RunSpec, SpecError

TOP_LEVEL_KEYS = ("name", "description", "defaults", "grid", "include")
EXPERIMENTS_DIR = Path(__file__).resolve().parent


class ManifestError(Exception):
    """Every problem found in a manifest (or its overrides), one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(dict.fromkeys(problems))  # a grid repeats a bad default in every run: say it once
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Manifest:
    path: Path
    name: str
    description: str
    runs: tuple[RunSpec, ...]
    origins: tuple[str, ...]  # for each run, where it came from ("grid: seed=0, ..." or "include[2]")

    def find(self, run_id: str) -> RunSpec | None:
        return next((spec for spec in self.runs if spec.run_id == run_id), None)


# ------------------------------------------------------------------------------ checks on resolved runs


def _run_problems(run: RunValues) -> list[tuple[str, str]]:
    """Names against the registries, then the spec's own checks; each problem at the key's origin."""
    data = SECTIONS["data"]().name if "name" not in run.values["data"] else run.values["data"]["name"]
    arch = SECTIONS["model"]().arch if "arch" not in run.values["model"] else run.values["model"]["arch"]
    problems = [(_origin_of(run, key), message) for key, message in name_problems(data, arch, run.values["method"])]
    if not problems:
        run.values["method"] = normalised(run.values["method"])
    return problems


def _origin_of(run: RunValues, key: str) -> str:
    return _method_key_origin(run, key.removeprefix("method.")) if key.startswith("method.") else run.origin(key)


def _method_key_origin(run: RunValues, key: str) -> str:
    """Where method.<key> was set. Given inside a whole method mapping (`method: {name: x, lamb: 1}`),
    the key path goes down to the option itself: defaults.method.lamb, grid.method[1].lamb."""
    where = run.origin(f"method.{key}")
    if f"method.{key}" in run.origins or where == BUILT_IN or where.startswith("override"):
        return where
    return f"{where}.{key}"


def _is_named_axis(key: str, values: list) -> bool:
    """A grid axis of run-key mappings under a label (not itself a run key); see the module docstring."""
    return key.split(".")[0] not in RUN_KEYS and all(isinstance(value, dict) for value in values)


# ------------------------------------------------------------------------------------------- manifests


def find_manifest(name_or_path: str | Path) -> Path:
    """A path, or a manifest name under the installed experiments/ folder (`quickstart`, `paper/in1k`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (EXPERIMENTS_DIR / f"{name_or_path}.yaml", EXPERIMENTS_DIR / str(name_or_path)):
        if candidate.is_file():
            return candidate
    known = sorted(str(p.relative_to(EXPERIMENTS_DIR).with_suffix("")) for p in EXPERIMENTS_DIR.rglob("*.yaml"))
    hint = did_you_mean(name_or_path, known, cutoff=0.5, joiner=" or ")
    raise ManifestError([
        (f"{name_or_path}: no such manifest file, and no {EXPERIMENTS_DIR / (str(name_or_path) + '.yaml')}{hint} "
        f"(manifests in {EXPERIMENTS_DIR}: {', '.join(known) or 'none'})")
    ])


def parse_override(text: str) -> tuple[str, Any] | str:
    """`train.lr=1e-3` -> ("train.lr", 0.001); the value is a YAML scalar (or flow mapping/list).
    Returns a problem message instead when the text is not key=value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        return f"expected key=value (e.g. train.lr=1e-3), got '{text}'"
    try:
        value = parse_yaml(raw, "value")
    except YAMLProblem as error:
        return f"value '{raw}' is not valid YAML ({str(error).split('bad YAML: ', 1)[-1]})"
    return key.strip(), value


def _describe_value(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def load_manifest(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                  loading: tuple[Path, ...] = ()) -> Manifest:
    """Read, validate and expand a manifest; raises ManifestError listing every problem. `loading`: the
    manifests whose model.init_from led here, to stop a cycle of references."""
    path = find_manifest(name_or_path)
    source = str(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ManifestError([f"{source}: cannot read: {error.strerror}"]) from None
    try:
        data = parse_yaml(text, source)
    except YAMLProblem as error:
        raise ManifestError([str(error)]) from None
    if path.resolve() in loading:
        chain = " -> ".join(str(p) for p in [*loading, path.resolve()])
        raise ManifestError([f"{source}: model.init_from references form a cycle: {chain}"])
    return expand(data, source, overrides, path, (*loading, path.resolve()))


def expand(data: Any, source: str, overrides=(), path: Path | None = None, loading: tuple[Path, ...] = ()) -> Manifest:
    """Manifest data (already parsed) -> Manifest. `source` names the file in messages."""
    problems: list[tuple[str, str]] = []

    def fail() -> ManifestError:
        return ManifestError([f"{source}: {where}: {message}" for where, message in problems])

    if not isinstance(data, dict):
        problems.append(("top level", (f"a manifest is a mapping with keys {', '.join(TOP_LEVEL_KEYS)}; "
                                      f"got {'an empty file' if data is None else type(data).__name__}")))
        raise fail()
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            hint = f"; run settings go under defaults (defaults.{key})" if key in RUN_KEYS else ""
            problems.append((str(key), f"unknown top-level key '{key}'{hint or suggest(key, TOP_LEVEL_KEYS)}"))
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(("name", (f"experiment name must be letters, digits, '_', '-' or '.' (it names the folder "
                                 f"results/<name>), got {json.dumps(name)}")))
        name = "invalid-name"
    description = data.get("description") or ""

    base = new_run()
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.append(("defaults", f"must be a mapping of run settings ({', '.join(RUN_KEYS)})"))
        defaults = {}
    for key, value in defaults.items():
        assign(base, str(key), value, f"defaults.{key}", problems)

    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        problems.append(("grid", "must be a mapping of key -> list of values"))
        grid = {}
    axes: list[tuple[str, list]] = []
    for key, values in grid.items():
        if not isinstance(values, list):
            problems.append((f"grid.{key}", (f"expected a list of values, got {json.dumps(values)}; write "
                                            f"[{_describe_value(values)}] or move it to defaults")))
        elif not values:
            problems.append((f"grid.{key}", ("empty list: the grid would have no runs; give at least one value "
                                            "or remove the key")))
        else:
            axes.append((str(key), values))

    include = data.get("include") or []
    if not isinstance(include, list) or not all(isinstance(item, dict) for item in include):
        problems.append(("include", "must be a list of mappings {dotted.key: value}"))
        include = []

    parsed_overrides: list[tuple[str, Any, str]] = []
    for text in overrides:
        parsed = parse_override(text)
        if isinstance(parsed, str):
            problems.append((f"override '{text}'", parsed))
        else:
            parsed_overrides.append((*parsed, f"override '{text}'"))

    candidates: list[tuple[RunValues, str]] = []
    # No grid: the defaults are one run, unless include lists the runs (then they are the only ones).
    combinations = itertools.product(*(range(len(values)) for _, values in axes)) if axes or not include else []
    for combination in combinations:
        run = base.copy()
        for (key, values), index in zip(axes, combination):
            if _is_named_axis(key, values):
                for item_key, item in values[index].items():
                    assign(run, str(item_key), item, f"grid.{key}[{index}].{item_key}", problems)
            else:
                assign(run, key, values[index], f"grid.{key}[{index}]", problems)
        label = ", ".join(f"{key}={_describe_value(values[i])}" for (key, values), i in zip(axes, combination))
        candidates.append((run, f"grid: {label}" if label else "defaults"))
    for index, extra in enumerate(include):
        run = base.copy()
        for key, value in extra.items():
            assign(run, str(key), value, f"include[{index}].{key}", problems)
        candidates.append((run, f"include[{index}]"))

    runs: list[RunSpec] = []
    origins: list[str] = []
    sources: dict[str, Manifest] = {}  # init_from manifests, loaded once for all the runs naming them
    for run, origin in candidates:
        for key, value, where in parsed_overrides:
            assign(run, key, value, where, problems)
        resolved = _run_problems(run)
        problems.extend(resolved)
        if resolved:
            continue
        try:
            spec = RunSpec.from_dict({"experiment": name, **run.values})
        except SpecError as error:  # a rule between a section's fields (a range written [high, low], say)
            problems.extend((run.origin(key), f"{key}: {message}") for key, message in error.problems)
            continue
        cross = run_problems(spec) + probe_problems(spec.eval)
        problems.extend((run.origin(key), message if run.origin(key).endswith(key) else f"{key}: {message}")
                        for key, message in cross)
        if cross:
            continue
        if spec.model.init_from is not None:
            spec, problem = resolve_init_from(spec, sources, lambda ref: load_manifest(ref, loading=loading))
            if problem:
                problems.append((run.origin("model.init_from"), problem))
                continue
        runs.append(spec)
        origins.append(origin)

    first_seen: dict[str, str] = {}
    for spec, origin in zip(runs, origins):
        if spec.run_id in first_seen:
            problems.append((origin, (f"same run as {first_seen[spec.run_id]} (run_id {spec.run_id}; resources "
                                     f"do not count); remove one of them")))
        else:
            first_seen[spec.run_id] = origin
    if problems:
        raise fail()
    return Manifest(path or Path(source), name, str(description), tuple(runs), tuple(origins))

def find_run(manifest: Manifest, wanted: str) -> RunSpec:
    """A run by its exact run_id, or by a unique prefix of one (`lejepa run --only`)."""
    spec = manifest.find(wanted)
    if spec is not None:
        return spec
    matches = [s for s in manifest.runs if s.run_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    ids = [s.run_id for s in manifest.runs]
    prefixed = [s.run_id for s in matches[:5]]
    hint = f"; did you mean {' or '.join(prefixed)}?" if prefixed else did_you_mean(wanted, ids, cutoff=0.4,
                                                                                      joiner=" or ")
    what = "matches several runs" if matches else "is not a run of this manifest"
    raise ManifestError([(f"{manifest.path}: --only {wanted} {what}{hint} (`lejepa launch {manifest.path} "
                         f"--dry-run` lists the {len(ids)} run ids)")])


# ------------------------------------------------------------------------------------ launch-time check


def missing_data(manifest: Manifest, runs: list[RunSpec] | None = None) -> list[str]:
    """Datasets whose folder does not exist, for all runs or the given ones. Checked at launch, not at
    --dry-run: a dry run may be planned on a machine without the data."""
    from lejepa.data import get_dataset
    from lejepa.data.common import download_allowed

    try:
        from lejepa.data.common import download_allowed
    except ImportError:  # the download opt-in arrived with the larger loaders
        def download_allowed() -> bool:
            return False

    problems = []
    users: dict[tuple[str, str | None], int] = {}
    for spec in manifest.runs if runs is None else runs:
        users[(spec.data.name, spec.data.root)] = users.get((spec.data.name, spec.data.root), 0) + 1
    for (name, root), count in users.items():
        info = get_dataset(name)
        if root is None and info.default_root.startswith("("):  # ships inside a package, no folder
            continue
        folder = info.resolve_root(root)
        if folder.exists() or download_allowed():
            continue
        base = os.environ.get("LEJEPA_DATA_ROOT", "~/data")
        problems.append(
            f"{manifest.path}: data.name={name}: dataset folder {folder} does not exist ({count} run(s) use it). "
            f"To get it: {info.how_to_get}. Then point the runs at it with data.root=/path/to/{name} "
            f"(manifest or key=value) or set $LEJEPA_DATA_ROOT (now {base})."
        )
    return problems
