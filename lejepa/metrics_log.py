"""metrics.jsonl: one JSON line per logged training step, readable as one uninterrupted run after resumes.

A crash or a full disk in the middle of an append leaves a partial last line. Readers skip lines that are
not whole JSON objects (and say which), and a resumed run rewrites the log up to its checkpoint's step, so
neither a partial line nor lines from after the checkpoint survive into the resumed log.
"""

from __future__ import annotations

import errno
import json
import warnings
from pathlib import Path

from lejepa.files import DiskFull, atomic_write_text


def read_metrics(path: Path) -> list[dict]:
    """Every whole line of a metrics log; a damaged line is skipped with a warning naming file and line."""
    path = Path(path)
    if not path.exists():
        return []
    lines = []
    for number, text in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            if not isinstance(line, dict) or "step" not in line:
                raise ValueError("not a metrics line")
        except ValueError:
            warnings.warn(f"{path}:{number}: skipped a damaged line (a write cut short?): {text[:80]!r}", stacklevel=2)
            continue
        lines.append(line)
    return lines


class MetricsLog:
    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled

    def truncate_after(self, step: int) -> None:
        """Keep only whole lines up to `step` (0: none), so the log continues where the checkpoint does."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in read_metrics(self.path) if line["step"] <= step]
        atomic_write_text(self.path, "".join(json.dumps(line) + "\n" for line in kept))

    def append(self, values: dict) -> None:
        if not self.enabled:
            return
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(values) + "\n")
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise DiskFull(error.errno, f"no space left to append to {self.path}; free space (or move the results "
                                        f"folder), then relaunch: the run resumes from its newest checkpoint and "
                                        f"the log's partial line is dropped") from error
