"""Writing files so that a crash, a kill or a full disk never leaves a half-written one in place.

Every file the suite writes that a later step reads (checkpoints, records, the launch ledger, feature caches)
goes through `atomic_write_bytes`: write a temporary sibling, flush it to disk, then rename it over the
target. A reader sees the old file or the new one, never a mix. The file gets the mode the process's umask
allows (a shared results folder stays readable to the group), not mkstemp's owner-only 0600.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMPORARY_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call write(file) on a temporary sibling of `path`, fsync, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    payload = text.encode()
    atomic_write_bytes(path, lambda f: f.write(payload))
