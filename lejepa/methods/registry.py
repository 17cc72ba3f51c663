"""Methods by name, and the factory that builds the spec's method on its backbone.

Adding a method is one file under lejepa/methods/ with a class decorated by `register_method`, imported in
lejepa/methods/__init__.py.
"""

from __future__ import annotations

import dataclasses

from lejepa.backbones import create_backbone
from lejepa.methods.base import Method
from lejepa.names import did_you_mean, register_once
from lejepa.options import OptionError, check_value
from lejepa.seeds import seed_everything
from lejepa.spec import RunSpec

METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    return register_once(METHODS, "method", cls.name, cls)


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise KeyError(f"unknown method '{name}'{did_you_mean(name, METHODS)} (known: {', '.join(sorted(METHODS))})")
    return METHODS[name]


def option_problems(method_section: dict) -> list[tuple[str, str]]:
    """(option, message) for each unknown, mistyped or out-of-range option of {'name': ..., **options}; the
    method name itself must be known (get_method raises KeyError otherwise)."""
    cls = get_method(method_section.get("name", ""))
    known = [f.name for f in dataclasses.fields(cls.Options)]
    problems = []
    for key, value in method_section.items():
        if key == "name":
            continue
        if key not in known:
            extra = "" if known else "; this method takes no options"
            problems.append((key, (f"method '{cls.name}' has no option '{key}'{did_you_mean(key, known)} "
                                  f"(options: {', '.join(known) or 'none'}{extra})")))
            continue
        _, problem = check_value(cls.Options, key, value)
        if problem:
            problems.append((key, f"method '{cls.name}' option {key}: {problem}"))
    if not problems:
        try:
            parse_options(method_section)
        except OptionError as error:
            problems = [(key, f"method '{cls.name}' option {key}: {message}") for key, message in error.problems]
    return problems


def normalised(method_section: dict) -> dict:
    """The method mapping with integers for float options as floats (lists stay lists): the form a spec
    stores, so `lamb: 1` and `lamb: 1.0` are the same run. Options must already be valid."""
    cls = get_method(method_section.get("name", ""))
    out = {}
    for key, value in method_section.items():
        if key != "name":
            value, _ = check_value(cls.Options, key, value, as_float=True)
            value = list(value) if isinstance(value, tuple) else value
        out[key] = value
    return out


def parse_options(method_section: dict) -> tuple[type[Method], object]:
    """{'name': ..., **options} -> (method class, its validated Options)."""
    cls = get_method(method_section.get("name", ""))
    options = {}
    for key, value in method_section.items():
        if key == "name":
            continue
        if key not in {f.name for f in dataclasses.fields(cls.Options)}:
            raise KeyError(option_problems(method_section)[0][1])
        options[key], _ = check_value(cls.Options, key, value, as_float=True)
    try:
        return cls, cls.Options(**options)
    except OptionError:
        raise
    except (TypeError, ValueError) as error:  # a plain dataclass's own __post_init__ check
        raise OptionError(cls.name, [("", str(error))]) from None


def build_method(spec: RunSpec, image_size: int) -> Method:
    """Backbone + the spec's method, initialised from the run's seed (same seed, same weights)."""
    method_cls, options = parse_options(spec.method)
    seed_everything(spec.seed)
    return method_cls(create_backbone(spec.model, image_size), options, spec)
