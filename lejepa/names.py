"""The "did you mean" hint every unknown-name error shares (methods, datasets, architectures, probes,
manifests, keys), so that they all read alike."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: object, valid: Iterable[str], *, cutoff: float = 0.6, joiner: str = ", ") -> str:
    """'; did you mean a, b?' for the (up to three) valid names closest to `name`, or '' when none is close."""
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=cutoff)
    return f"; did you mean {joiner.join(close)}?" if close else ""
