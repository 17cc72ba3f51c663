"""Writing files so that a crash, a kill or a full disk never leaves a half-written one in place.

Every file the suite writes that a later step reads (checkpoints, records, the launch ledger, feature caches)
goes through `atomic_write_bytes`: write a temporary sibling, flush it to disk, then rename it over the
target. A reader sees the old file or the new one, never a mix. The file gets the mode the process's umask
allows (a shared results folder stays readable to the group), not mkstemp's owner-only 0600.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMPORARY_SUFFIX = ".tmp"


class DiskFull(OSError):
    """A write ran out of space; the file it would have replaced is intact."""


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
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if _out_of_space(error):
            free = shutil.disk_usage(path.parent).free / 2**20
            raise DiskFull(errno.ENOSPC, f"no space left to write {path} ({free:.0f} MiB free on its disk); "
                                         f"nothing was lost: the previous {path.name}, if any, is intact. Free "
                                         f"space (or move the results folder), then relaunch to continue") from error
        raise


def _out_of_space(error: BaseException) -> bool:
    # torch.save reports a full disk as a RuntimeError from its C++ writer, not as an OSError.
    return (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)) or (
        isinstance(error, RuntimeError) and "file write failed" in str(error))


def atomic_write_text(path: Path, text: str) -> None:
    payload = text.encode()
    atomic_write_bytes(path, lambda f: f.write(payload))
