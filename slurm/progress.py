"""Live progress of running runs, read from each run's metrics.jsonl (lejepa/train.py appends a line every
`train.log_every` steps with step, total_steps, loss, images_per_second and elapsed).

One line per run: step / total, loss, images/s and the time left to the end of pretraining at the run's
measured speed (steps left / steps per second; frozen evaluation comes after and is not included). The
local executor shows the lines while it waits (`LiveLines`): redrawn in place on a terminal, printed as
plain lines every so often when the output is a file or a pipe. `lejepa status` uses the same estimate.
"""

from __future__ import annotations

import shutil
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from evaluation.record import run_dir
from lejepa.metrics_log import read_metrics
from lejepa.spec import RunSpec


@dataclass(frozen=True)
class Progress:
    """A run's newest metrics line."""

    step: int
    total_steps: int | None  # None in logs written before the field existed
    loss: float | None
    images_per_second: float | None
    elapsed: float | None  # pretraining wall seconds so far, resumed attempts included
    batch_size: int

    @property
    def steps_per_second(self) -> float | None:
        if self.images_per_second and self.images_per_second > 0:
            return self.images_per_second / self.batch_size
        if self.elapsed and self.elapsed > 0 and self.step > 0:
            return self.step / self.elapsed
        return None

    @property
    def finished(self) -> bool:
        return self.total_steps is not None and self.step >= self.total_steps

    @property
    def seconds_left(self) -> float | None:
        """Pretraining time left at the measured speed; None when the total or the speed is unknown."""
        if self.total_steps is None:
            return None
        if self.finished:
            return 0.0
        rate = self.steps_per_second
        return (self.total_steps - self.step) / rate if rate else None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_progress(results_root: Path, spec: RunSpec) -> Progress | None:
    """The newest metrics line of a run, or None before its first one. A line the trainer is writing at this
    moment is skipped quietly (it is whole at the next look)."""
    path = run_dir(results_root, spec.experiment, spec.run_id) / "metrics.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lines = read_metrics(path)
    if not lines:
        return None
    last = lines[-1]
    total = last.get("total_steps")
    return Progress(int(last["step"]), int(total) if isinstance(total, int) else None, _number(last.get("loss")),
                    _number(last.get("images_per_second")), _number(last.get("elapsed")), spec.train.batch_size)


def clock_text(seconds: float) -> str:
    """12 s, 4:05, 1:02:03."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(progress: Progress) -> str:
    """'step 120/234, loss 0.4312, 131 img/s, ETA 0:52' (the ETA of pretraining)."""
    total = f"/{progress.total_steps}" if progress.total_steps is not None else ""
    parts = [f"step {progress.step}{total}"]
    if progress.loss is not None:
        parts.append(f"loss {progress.loss:.4f}")
    if progress.images_per_second:
        parts.append(f"{progress.images_per_second:.0f} img/s")
    if progress.finished:
        parts.append("pretraining done, evaluating")
    elif progress.seconds_left is not None:
        parts.append(f"ETA {clock_text(progress.seconds_left)}")
    return ", ".join(parts)


def run_line(results_root: Path, spec: RunSpec, running_for: float) -> str:
    """One running run: its progress, or what it is doing before its first metrics line."""
    progress = read_progress(results_root, spec)
    if progress is not None:
        return f"{spec.run_id}: {progress_text(progress)}"
    if spec.model.init_from or not _pretrains(spec):
        what = "evaluating (no pretraining)"
    else:
        what = "starting (no training step logged yet)"
    return f"{spec.run_id}: {what}, {clock_text(running_for)} so far"


def _pretrains(spec: RunSpec) -> bool:
    from lejepa.methods import get_method

    try:
        return bool(get_method(spec.method_name).pretrains)
    except KeyError:
        return True


class LiveLines:
    """A block of status lines kept current: on a terminal, redrawn in place at most every `tty_every`
    seconds; otherwise printed as plain lines every `plain_every` seconds (a log file stays readable).
    Call `clear()` before printing anything else, so a message never lands inside the block."""

    def __init__(self, stream: TextIO | None = None, tty_every: float = 1.0, plain_every: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = tty_every if self.tty else plain_every
        self.clock = clock
        self.drawn = 0  # lines of the block on screen (terminal only)
        # a terminal shows the block at once; a log gets its first lines after `plain_every` seconds
        self.last: float | None = None if self.tty else clock()

    def due(self) -> bool:
        """Whether show() would draw now (so the caller reads the metrics files only then)."""
        return self.last is None or self.clock() - self.last >= self.every

    def show(self, lines: list[str]) -> bool:
        """Draw `lines` if it is time to; True when they were drawn."""
        if not lines or not self.due():
            return False
        self.last = self.clock()
        if self.tty:
            width = max(20, shutil.get_terminal_size().columns - 1)  # a wrapped line would break the redraw
            self.clear()
            self.stream.write("".join(line[:width] + "\n" for line in lines))
            self.drawn = len(lines)
        else:
            self.stream.write("".join(f"progress {time.strftime('%H:%M:%S')} {line}\n" for line in lines))
        self.stream.flush()
        return True

    def clear(self) -> None:
        """Remove the block from a terminal (cursor up to its first line, erase to the end of the screen)."""
        if self.tty and self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
            self.stream.flush()
            self.last = None  # redraw at the next show(), under whatever was printed
        self.drawn = 0
