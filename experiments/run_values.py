"""One run of a manifest being assembled: its values as nested mappings, and where each key was set.

`assign` sets a dotted key ("train.lr", "method.lamb", "model.timm_kwargs.channels") from the defaults, a grid
axis, an include entry or an override, checking the key exists and the value fits the field (lejepa/options.py),
and remembers where it came from, so every problem can name the line of the manifest that caused it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from lejepa.names import did_you_mean
from lejepa.options import check_value, field_types, type_words
from lejepa.spec import SECTIONS

RUN_KEYS = ("seed", "method", *SECTIONS)
BUILT_IN = "(built-in default)"


def suggest(name: str, valid, extra: str = "") -> str:
    hint = did_you_mean(name, valid, cutoff=0.5, joiner=" or ")
    return f"{hint} (valid: {', '.join(valid)}{extra})"


@dataclass
class RunValues:
    """A run being assembled: its values as nested dicts, and where each dotted key was last set."""

    values: dict
    origins: dict[str, str]

    def copy(self) -> RunValues:
        return RunValues(copy.deepcopy(self.values), dict(self.origins))

    def origin(self, key: str) -> str:
        while key:
            if key in self.origins:
                return self.origins[key]
            key = key.rpartition(".")[0]
        return BUILT_IN


def new_run() -> RunValues:
    return RunValues({"seed": 0, "method": {"name": "lejepa"}, **{name: {} for name in SECTIONS}}, {})


def _misplaced_hint(key: str) -> str:
    """`lr` or `arch` on its own: point at the section that has it."""
    owners = [f"{name}.{key}" for name, section in SECTIONS.items() if key in field_types(section)]
    return f"; did you mean {' or '.join(owners)}?" if owners else ""


def assign(run: RunValues, key: str, value: Any, where: str, problems: list[tuple[str, str]]) -> None:
    """Set dotted `key` to `value` in `run`, checking key and type; problems get (where, message)."""
    parts = key.split(".")
    head = parts[0]
    if head == "seed":
        if len(parts) > 1:
            problems.append((where, f"seed is a number and has no key '{'.'.join(parts[1:])}'"))
            return
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            shown = repr(value) if isinstance(value, str) else json.dumps(value)
            problems.append((where, f"seed: expected an integer >= 0, got {shown} ({type(value).__name__})"))
            return
        run.values["seed"], run.origins["seed"] = value, where
    elif head == "method":
        _assign_method(run, parts[1:], value, where, problems)
    elif head in SECTIONS:
        _assign_section(run, head, parts[1:], value, where, problems)
    else:
        misplaced = _misplaced_hint(head)
        hint = f"{misplaced} (valid: {', '.join(RUN_KEYS)})" if misplaced else suggest(head, RUN_KEYS)
        problems.append((where, f"unknown key '{head}'{hint}"))


def _assign_method(run: RunValues, rest: list[str], value: Any, where: str, problems) -> None:
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


def _assign_section(run: RunValues, section: str, rest: list[str], value: Any, where: str, problems) -> None:
    section_type = SECTIONS[section]
    fields = field_types(section_type)
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
        problems.append((where, f"{section} has no key '{name}'{suggest(name, fields)}{named_axis}"))
        return
    dotted = f"{section}.{name}"
    if len(rest) == 1:
        value, error = check_value(section_type, name, value, as_float=True)
        if error:
            problems.append((where, error if where.endswith(dotted) else f"{dotted}: {error}"))
            return
        run.values[section][name] = copy.deepcopy(value)
        run.origins[dotted] = where
        return
    if fields[name] is not dict:  # deeper keys only make sense inside a free mapping (model.timm_kwargs)
        problems.append((where, f"{dotted} is {type_words(fields[name])}, it has no key '{'.'.join(rest[1:])}'"))
        return
    target = run.values[section].setdefault(name, {})
    for part in rest[1:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[rest[-1]] = copy.deepcopy(value)
    run.origins[".".join([section, *rest])] = where
