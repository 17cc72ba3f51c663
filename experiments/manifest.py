"""Manifests: a YAML file of defaults + a grid, expanded into validated RunSpecs (DESIGN.md section 1).

Everything a manifest says is checked before anything is submitted: keys, value types, dataset,
architecture, method and its options, empty grids, duplicate runs. All problems of a manifest are
collected and reported together, each naming the file, the key path it came from and the closest valid
names. The format is documented in experiments/README.md.

Two additions to the grid/include format:
- A named axis: a grid key that is not a run key, whose values are mappings of run keys, sets those keys
  together, so values that belong together vary as one (an architecture and its weight decay):
      grid:
        backbone:
          - {model.arch: resnet50, train.weight_decay: 5.0e-4}
          - {model.arch: vit_small_patch16_224, train.weight_decay: 5.0e-2}
- `model.init_from` may name a manifest (`paper/in1k`): it resolves to "EXPERIMENT/RUN_ID" of the one run
  of that manifest with this run's seed, method and model, and the resolution must match the source's
  (the backbone is built for it). A run with init_from does not pretrain, so it must say train.epochs: 0.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import itertools
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lejepa.spec import SECTIONS, RunSpec

TOP_LEVEL_KEYS = ("name", "description", "defaults", "grid", "include")
RUN_KEYS = ("seed", "method", *SECTIONS)
BUILT_IN = "(built-in default)"
EXPERIMENTS_DIR = Path(__file__).resolve().parent
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# model.init_from written as EXPERIMENT/RUN_ID (a run_id ends in -s<seed>-<10 hex digits>, see RunSpec.run_id)
RUN_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+-s\d+-[0-9a-f]{10}$")
_LOADING: list[Path] = []  # manifests being loaded, innermost last: a cycle of init_from references stops here


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


# ----------------------------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """Safe YAML, plus two fixes: `1e-3` is a float (YAML 1.1 wants `1.0e-3`; everyone writes `1e-3`),
    and a key given twice in one mapping is an error instead of silently keeping the last one."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' appears twice in this mapping (first on line {seen[key].line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> Any:
    """YAML text -> data; a syntax error becomes a ManifestError with the line and column."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark, started = error.problem_mark or error.context_mark, error.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        context = error.context
        if context and started and started is not mark and started.line != mark.line:
            # an unclosed bracket is noticed lines later: say where the construct began
            context = f"{context} (started at line {started.line + 1}, column {started.column + 1})"
        what = " ".join(part for part in (context, error.problem) if part)
        raise ManifestError([f"{where}: bad YAML: {what}"]) from None
    except yaml.YAMLError as error:
        raise ManifestError([f"{source}: bad YAML: {error}"]) from None


# ------------------------------------------------------------------------------------------ value types


def _suggest(name: str, valid, extra: str = "") -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"{hint} (valid: {', '.join(valid)}{extra})"


_TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
               "None": "null", "dict": "a mapping"}


def _describe(type_text: str) -> str:
    words = []
    for alternative in (t.strip() for t in type_text.split("|")):
        inner = _tuple_items(alternative)
        if inner is None:
            words.append(_TYPE_WORDS.get(alternative, alternative))
        elif inner[-1] == "...":
            words.append(f"a list of {_TYPE_WORDS[inner[0]].split(' ', 1)[1]}s")
        else:
            words.append(f"a list of {len(inner)} {_TYPE_WORDS[inner[0]].split(' ', 1)[1]}s")
    return " or ".join(words)


def _tuple_items(type_text: str) -> list[str] | None:
    if not type_text.startswith("tuple[") or not type_text.endswith("]"):
        return None
    return [t.strip() for t in type_text[len("tuple["):-1].split(",")]


_NO_MATCH = object()


def _coerce_one(value: Any, type_text: str) -> Any:
    """The value as `type_text` wants it (ints become floats for float fields, lists become tuples),
    or _NO_MATCH. Types this reader does not know pass unchecked rather than blocking a valid run."""
    if type_text == "None":
        return None if value is None else _NO_MATCH
    if type_text == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO_MATCH
    if type_text == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _NO_MATCH
    if type_text == "str":
        return value if isinstance(value, str) else _NO_MATCH
    if type_text == "bool":
        return value if isinstance(value, bool) else _NO_MATCH
    if type_text == "dict":
        return value if isinstance(value, dict) else _NO_MATCH
    items = _tuple_items(type_text)
    if items is not None:
        if not isinstance(value, (list, tuple)):
            return _NO_MATCH
        item_types = [items[0]] * len(value) if items[-1] == "..." else items
        if len(item_types) != len(value):
            return _NO_MATCH
        coerced = [_coerce_one(v, t) for v, t in zip(value, item_types)]
        return _NO_MATCH if any(c is _NO_MATCH for c in coerced) else list(coerced)
    return value


def coerce(value: Any, type_text: str) -> tuple[Any, str | None]:
    """(coerced value, None) or (value, message saying what was expected)."""
    for alternative in (t.strip() for t in str(type_text).split("|")):
        coerced = _coerce_one(value, alternative)
        if coerced is not _NO_MATCH:
            return coerced, None
    shown = json.dumps(value) if not isinstance(value, str) else repr(value)
    return value, f"expected {_describe(str(type_text))}, got {shown} ({type(value).__name__})"


def _field_types(section_type: type) -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(section_type)}


# ------------------------------------------------------------------------------------- building a run


@dataclass
class _Run:
    """A run being assembled: its values as nested dicts, and where each dotted key was last set."""

    values: dict
    origins: dict[str, str]

    def copy(self) -> _Run:
        return _Run(copy.deepcopy(self.values), dict(self.origins))

    def origin(self, key: str) -> str:
        while key:
            if key in self.origins:
                return self.origins[key]
            key = key.rpartition(".")[0]
        return BUILT_IN


def _new_run() -> _Run:
    return _Run({"seed": 0, "method": {"name": "lejepa"}, **{name: {} for name in SECTIONS}}, {})


def _misplaced_hint(key: str) -> str:
    """`lr` or `arch` on its own: point at the section that has it."""
    owners = [f"{name}.{key}" for name, section in SECTIONS.items() if key in _field_types(section)]
    return f"; did you mean {' or '.join(owners)}?" if owners else ""


def assign(run: _Run, key: str, value: Any, where: str, problems: list[tuple[str, str]]) -> None:
    """Set dotted `key` to `value` in `run`, checking key and type; problems get (where, message)."""
    parts = key.split(".")
    head = parts[0]
    if head == "seed":
        if len(parts) > 1:
            problems.append((where, f"seed is a number and has no key '{'.'.join(parts[1:])}'"))
            return
        value, error = coerce(value, "int")
        if error:
            problems.append((where, f"seed: {error}"))
            return
        run.values["seed"], run.origins["seed"] = value, where
    elif head == "method":
        _assign_method(run, parts[1:], value, where, problems)
    elif head in SECTIONS:
        _assign_section(run, head, parts[1:], value, where, problems)
    else:
        misplaced = _misplaced_hint(head)
        hint = f"{misplaced} (valid: {', '.join(RUN_KEYS)})" if misplaced else _suggest(head, RUN_KEYS)
        problems.append((where, f"unknown key '{head}'{hint}"))


def _assign_method(run: _Run, rest: list[str], value: Any, where: str, problems) -> None:
    if not rest:  # a whole method section replaces the previous one: options belong to one method
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            problems.append((where, (f"method must be a mapping with a 'name' (e.g. {{name: lejepa, lamb: 0.05}}), "
                                    f"got {json.dumps(value)}")))
            return
        run.values["method"] = copy.deepcopy(value)
        run.origins = {k: v for k, v in run.origins.items() if k != "method" and not k.startswith("method.")}
        run.origins["method"] = where
        return
    if len(rest) > 1:
        problems.append((where, f"method options are single names, not '{'.'.join(rest)}'"))
        return
    run.values["method"][rest[0]] = copy.deepcopy(value)
    run.origins[f"method.{rest[0]}"] = where


def _assign_section(run: _Run, section: str, rest: list[str], value: Any, where: str, problems) -> None:
    fields = _field_types(SECTIONS[section])
    if not rest:  # a whole section: merged key by key over what is already there
        if not isinstance(value, dict):
            problems.append((where, f"{section} must be a mapping of {section} options, got {json.dumps(value)}"))
            return
        for key, item in value.items():
            _assign_section(run, section, [str(key)], item, f"{where}.{key}", problems)
        return
    name = rest[0]
    if name not in fields:
        named_axis = ("; to set keys of several sections together in a grid, give the axis a label that is not a "
                      "run key (grid: {setting: [{...}]})") if "." in name and where.startswith("grid.") else ""
        problems.append((where, f"{section} has no key '{name}'{_suggest(name, fields)}{named_axis}"))
        return
    dotted = f"{section}.{name}"
    if len(rest) == 1:
        value, error = coerce(value, fields[name])
        if error:
            problems.append((where, error if where.endswith(dotted) else f"{dotted}: {error}"))
            return
        run.values[section][name] = copy.deepcopy(value)
        run.origins[dotted] = where
        return
    if fields[name] != "dict":  # deeper keys only make sense inside a free mapping (model.timm_kwargs)
        problems.append((where, f"{dotted} is {_describe(fields[name])}, it has no key '{'.'.join(rest[1:])}'"))
        return
    target = run.values[section].setdefault(name, {})
    for part in rest[1:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[rest[-1]] = copy.deepcopy(value)
    run.origins[".".join([section, *rest])] = where


# ------------------------------------------------------------------------------ checks on resolved runs


@cache
def _architecture_problem(arch: str) -> str | None:
    from lejepa.backbones import check_architecture

    try:
        check_architecture(arch)
    except KeyError as error:
        return str(error.args[0])
    return None


def _resolved_problems(run: _Run) -> list[tuple[str, str]]:
    """Dataset, architecture and method exist; method options exist and have the right types."""
    from lejepa.data import get_dataset
    from lejepa.methods import parse_options

    problems: list[tuple[str, str]] = []
    dataset = run.values["data"].get("name", SECTIONS["data"]().name)
    try:
        get_dataset(dataset)
    except KeyError as error:
        problems.append((run.origin("data.name"), str(error.args[0]) + "; see `lejepa list datasets`"))
    arch = run.values["model"].get("arch", SECTIONS["model"]().arch)
    arch_problem = _architecture_problem(arch)
    if arch_problem:
        problems.append((run.origin("model.arch"), arch_problem))
    method = run.values["method"]
    try:
        method_cls, _ = parse_options({"name": method.get("name", "")})
    except KeyError as error:
        problems.append((_method_key_origin(run, "name"), str(error.args[0])))
        return problems
    option_types = _field_types(method_cls.Options)
    for key, value in list(method.items()):
        if key == "name":
            continue
        where = _method_key_origin(run, key)
        if key not in option_types:
            extra = "" if option_types else "; this method takes no options"
            problems.append((where, (f"method '{method_cls.name}' has no option '{key}'"
                                    f"{_suggest(key, option_types or ['none'], extra)}")))
            continue
        coerced, error = coerce(value, option_types[key])
        if error:
            problems.append((where, f"method '{method_cls.name}' option {key}: {error}"))
        else:
            method[key] = coerced
    return problems


def _method_key_origin(run: _Run, key: str) -> str:
    """Where method.<key> was set. Given inside a whole method mapping (`method: {name: x, lamb: 1}`),
    the key path goes down to the option itself: defaults.method.lamb, grid.method[1].lamb."""
    where = run.origin(f"method.{key}")
    if f"method.{key}" in run.origins or where == BUILT_IN or where.startswith("override"):
        return where
    return f"{where}.{key}"


def _is_named_axis(key: str, values: list) -> bool:
    """A grid axis of run-key mappings under a label (not itself a run key); see the module docstring."""
    return key.split(".")[0] not in RUN_KEYS and all(isinstance(value, dict) for value in values)


def _image_size(spec: RunSpec) -> int:
    from lejepa.data import get_dataset

    return spec.data.image_size or get_dataset(spec.data.name).image_size


def _resolve_init_from(spec: RunSpec, sources: dict[str, Manifest]) -> tuple[RunSpec, str | None]:
    """(spec with model.init_from as EXPERIMENT/RUN_ID, None), or (spec, what is wrong)."""
    from lejepa.methods import parse_options

    reference = spec.model.init_from
    if spec.train.epochs != 0:
        return spec, (f"model.init_from evaluates the weights of another run and does not pretrain: set "
                      f"train.epochs: 0 (got {spec.train.epochs:g})")
    if RUN_REFERENCE.match(reference):
        return spec, None  # an explicit run: the job checks that it is done and has its weights
    if reference not in sources:
        try:
            sources[reference] = load_manifest(reference)
        except ManifestError as error:
            return spec, (f"model.init_from '{reference}' is neither EXPERIMENT/RUN_ID nor a manifest that loads: "
                          f"{error.problems[0]}")
    source = sources[reference]
    model = dataclasses.replace(spec.model, init_from=None)
    method = parse_options(spec.method)
    matches = [s for s in source.runs if s.seed == spec.seed and s.model == model and parse_options(s.method) == method]
    if len(matches) != 1:
        offered = ", ".join(sorted({f"{s.method_name} {s.model.arch} seed {s.seed}" for s in source.runs}))
        return spec, (f"model.init_from {reference}: {len(matches)} of its {len(source.runs)} runs have this run's "
                      f"seed, method and model ({spec.method_name} {spec.model.arch} seed {spec.seed}); exactly one "
                      f"must (its runs: {offered}; method options and every model.* key must be equal)")
    found = matches[0]
    if _image_size(found) != _image_size(spec):
        return spec, (f"model.init_from {reference}: the source run {found.run_id} trained at {_image_size(found)} px "
                      f"and its backbone is built for that resolution; set data.image_size: {_image_size(found)} "
                      f"(this run has {_image_size(spec)})")
    resolved = dataclasses.replace(spec.model, init_from=f"{found.experiment}/{found.run_id}")
    return dataclasses.replace(spec, model=resolved), None


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
    close = difflib.get_close_matches(str(name_or_path), known, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
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
    except ManifestError as error:
        return f"value '{raw}' is not valid YAML ({error.problems[0].split('bad YAML: ', 1)[-1]})"
    return key.strip(), value


def _describe_value(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def load_manifest(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Manifest:
    """Read, validate and expand a manifest; raises ManifestError listing every problem."""
    path = find_manifest(name_or_path)
    source = str(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ManifestError([f"{source}: cannot read: {error.strerror}"]) from None
    data = parse_yaml(text, source)
    if path.resolve() in _LOADING:
        chain = " -> ".join(str(p) for p in [*_LOADING, path.resolve()])
        raise ManifestError([f"{source}: model.init_from references form a cycle: {chain}"])
    _LOADING.append(path.resolve())
    try:
        return expand(data, source, overrides, path)
    finally:
        _LOADING.pop()


def expand(data: Any, source: str, overrides=(), path: Path | None = None) -> Manifest:
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
            problems.append((str(key), f"unknown top-level key '{key}'{hint or _suggest(key, TOP_LEVEL_KEYS)}"))
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(("name", (f"experiment name must be letters, digits, '_', '-' or '.' (it names the folder "
                                 f"results/<name>), got {json.dumps(name)}")))
        name = "invalid-name"
    description = data.get("description") or ""

    base = _new_run()
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

    candidates: list[tuple[_Run, str]] = []
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
        resolved = _resolved_problems(run)
        problems.extend(resolved)
        if resolved:
            continue
        try:
            spec = RunSpec.from_dict({"experiment": name, **run.values})
        except (TypeError, ValueError) as error:  # a check above missed something: still a message
            problems.append((origin, f"cannot build the run: {error}"))
            continue
        if spec.model.init_from is not None:
            spec, problem = _resolve_init_from(spec, sources)
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



# ------------------------------------------------------------------------------------ launch-time check


def missing_data(manifest: Manifest, runs: list[RunSpec] | None = None) -> list[str]:
    """Datasets whose folder does not exist, for all runs or the given ones. Checked at launch, not at
    --dry-run: a dry run may be planned on a machine without the data."""
    from lejepa.data import get_dataset

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
