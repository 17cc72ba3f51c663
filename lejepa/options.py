"""Validated option dataclasses: the spec's sections, each method's options and each probe's options.

A field is declared with `setting(default, doc=..., low=..., choices=...)`; constructing the dataclass checks
every field's type (from its annotation) and range and raises `OptionError` listing every problem by field
name, so a bad value is refused where the value is defined, before anything is queued. `check_value` checks
one value the same way (the manifest uses it to name the line a value came from), and `describe_options`
lists the fields for `lejepa describe`.

A list given for a tuple field becomes a tuple, so a spec built from YAML or JSON equals the one built in
Python. An integer given for a float field is accepted and kept as it is (run ids hash the JSON, where 4 and
4.0 differ, and ids already given out must not change); the manifest layer asks for floats
(`check_value(..., as_float=True)`), as it always has.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null",
          dict: "a mapping"}


class OptionError(ValueError):
    """Problems of one option dataclass: (field name, message) pairs."""

    def __init__(self, owner: str, problems: list[tuple[str, str]]):
        self.owner, self.problems = owner, problems
        super().__init__("; ".join(f"{owner}.{name}: {message}" for name, message in problems))


@dataclass(frozen=True)
class Rule:
    doc: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: low itself is not allowed
    high_open: bool = False
    choices: tuple | None = None
    added: bool = False  # added after ids were first given out: left out of run_id while at its default
    was: Any = None  # with was_set: the default before it changed, what run_id hashes while the field holds its default
    was_set: bool = False

    def range_text(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return ""


def setting(default: Any = dataclasses.MISSING, *, doc: str = "", low: float | None = None,
            high: float | None = None, low_open: bool = False, high_open: bool = False,
            choices: tuple | None = None, added: bool = False, was: Any = dataclasses.MISSING,
            default_factory: Any = dataclasses.MISSING):
    """A dataclass field with a one-line meaning and an allowed range (applied to each item of a tuple).
    `added` and `was` keep run ids stable across spec changes (lejepa/spec.py's rule)."""
    changed = was is not dataclasses.MISSING
    rule = Rule(doc, low, high, low_open, high_open, choices, added, was if changed else None, changed)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"rule": rule})
    return dataclasses.field(default=default, metadata={"rule": rule})


def positive(default: Any, doc: str = "", **rule: Any):
    return setting(default, doc=doc, low=0, low_open=True, **rule)


def fraction(default: Any, doc: str = "", **rule: Any):
    return setting(default, doc=doc, low=0, high=1, **rule)


def rule_of(field: dataclasses.Field) -> Rule:
    return field.metadata.get("rule", Rule())


@cache
def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def type_words(annotation: Any) -> str:
    """`int | None` -> 'an integer or null'; `tuple[int, ...]` -> 'a list of integers'."""
    if _is_union(annotation):
        return " or ".join(type_words(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        item = _WORDS.get(args[0], str(args[0])).split(" ", 1)[-1]
        count = "" if args[-1] is Ellipsis else f"{len(args)} "
        return f"a list of {count}{item}s"
    return _WORDS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


_NO_MATCH = object()


def _coerce(value: Any, annotation: Any, as_float: bool) -> Any:
    """The value as the annotation wants it, or _NO_MATCH. Unknown annotations pass the value unchecked."""
    if _is_union(annotation):
        for alternative in typing.get_args(annotation):
            coerced = _coerce(value, alternative, as_float)
            if coerced is not _NO_MATCH:
                return coerced
        return _NO_MATCH
    if annotation is type(None):
        return None if value is None else _NO_MATCH
    if annotation is bool:
        return value if isinstance(value, bool) else _NO_MATCH
    if annotation is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO_MATCH
    if annotation is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return _NO_MATCH
        return float(value) if as_float else value
    if annotation in (str, dict):
        return value if isinstance(value, annotation) else _NO_MATCH
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            return _NO_MATCH
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            return _NO_MATCH
        items = [_coerce(v, t, as_float) for v, t in zip(value, item_types)]
        return _NO_MATCH if any(i is _NO_MATCH for i in items) else tuple(items)
    return value


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(value, default=str)


def _range_problem(value: Any, rule: Rule) -> str | None:
    if isinstance(value, tuple):
        return next((p for p in (_range_problem(v, rule) for v in value) if p), None)
    if rule.choices is not None:
        return None if value in rule.choices else f"must be {rule.range_text()}, got {_shown(value)}"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    too_low = rule.low is not None and (value <= rule.low if rule.low_open else value < rule.low)
    too_high = rule.high is not None and (value >= rule.high if rule.high_open else value > rule.high)
    return f"must be {rule.range_text()}, got {_shown(value)}" if too_low or too_high else None


def check_value(cls: type, name: str, value: Any, as_float: bool = False) -> tuple[Any, str | None]:
    """(normalised value, None), or (value, what is wrong with it) for field `name` of `cls`. `as_float`:
    an integer for a float field becomes a float."""
    annotation = field_types(cls)[name]
    coerced = _coerce(value, annotation, as_float)
    if coerced is _NO_MATCH:
        return value, f"expected {type_words(annotation)}, got {_shown(value)} ({type(value).__name__})"
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return coerced, _range_problem(coerced, rule_of(field))


class Validated:
    """Mixin for frozen option dataclasses: construction checks every field, then `cross_checks()`."""

    def __post_init__(self) -> None:
        problems = []
        for field in dataclasses.fields(self):
            value, problem = check_value(type(self), field.name, getattr(self, field.name))
            if problem:
                problems.append((field.name, problem))
            else:
                object.__setattr__(self, field.name, value)
        if not problems:
            problems = self.cross_checks()
        if problems:
            raise OptionError(getattr(self, "OWNER", type(self).__name__), problems)

    def cross_checks(self) -> list[tuple[str, str]]:
        """Rules between fields: (field name, message) for each one broken."""
        return []


def describe_options(cls: type) -> list[dict[str, str]]:
    """name, type, default, allowed range and meaning of every field of an option dataclass."""
    rows = []
    for field in dataclasses.fields(cls):
        rule = rule_of(field)
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = "(required)"
        rows.append({"name": field.name, "type": type_words(field_types(cls)[field.name]),
                     "default": json.dumps(default, default=str) if not isinstance(default, str) else default,
                     "range": rule.range_text(), "doc": rule.doc})
    return rows
