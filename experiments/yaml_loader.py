"""Safe YAML with two fixes for manifests, and syntax errors as messages with line and column."""

from __future__ import annotations

import re
from typing import Any

import yaml


class YAMLProblem(ValueError):
    """A YAML syntax error, as one line naming the source, line and column."""


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
    """YAML text -> data; a syntax error becomes a YAMLProblem with the line and column."""
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
        raise YAMLProblem(f"{where}: bad YAML: {what}") from None
    except yaml.YAMLError as error:
        raise YAMLProblem(f"{source}: bad YAML: {error}") from None
