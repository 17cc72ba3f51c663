"""Names in the registries (methods, datasets, probes): the one rule for adding one, and the
"did you mean" hint every unknown-name error shares (those and architectures, manifests, keys), so that
they all read alike."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, MutableMapping
from typing import TypeVar

T = TypeVar("T")


def did_you_mean(name: object, valid: Iterable[str], *, cutoff: float = 0.6, joiner: str = ", ") -> str:
    """'; did you mean a, b?' for the (up to three) valid names closest to `name`, or '' when none is close."""
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=cutoff)
    return f"; did you mean {joiner.join(close)}?" if close else ""


def register_once(table: MutableMapping[str, T], kind: str, name: str, value: T) -> T:
    """table[name] = value; a second entry of one name is a programming error (two modules claiming it)."""
    if name in table:
        raise ValueError(f"{kind} '{name}' is registered twice")
    table[name] = value
    return value
