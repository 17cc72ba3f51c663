"""One trainer per run: an exclusive lock on <run folder>/.lock, held for the whole run.

The lock is an advisory `flock` on an open file, so the kernel releases it when its holder dies, however it
dies: a killed trainer never leaves a stale lock, and a recycled PID cannot look like a live trainer. The
file also says who holds it (pid, host, start time) for messages. Another process asking for the same run
learns at once that it is taken (`RunLocked`), and `is_locked` lets `lejepa status` see a trainer that is
still alive even when the launcher that started it is gone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

LOCK_NAME = ".lock"


class RunLocked(RuntimeError):
    """Another live process is training this run."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _take(handle, tries: int = 20, wait_s: float = 0.05) -> bool:
    """The exclusive lock, or False when a live process keeps it. `is_locked` (`lejepa status`, a launch's
    plan) holds a shared lock for an instant: a trainer starting at that instant retries for up to a
    second rather than taking a reader for a trainer."""
    for attempt in range(tries):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if attempt + 1 < tries:
            time.sleep(wait_s)
    return False


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock inside the block; RunLocked at once if a live process holds it."""
    path = Path(run_dir) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        if not _take(handle):
            raise RunLocked(f"run folder {run_dir} is in use by {_holder(path)}: that process is training this "
                            f"run now; wait for it, or stop it to train here")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                 "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_locked(run_dir: Path) -> str | None:
    """Who holds the run's lock (a live process), or None when nobody does."""
    path = Path(run_dir) / LOCK_NAME
    if not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _holder(path)
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None
