"""Save a checkpoint when SLURM says the job is about to be preempted or to time out.

submitit asks SLURM to send a signal (SIGUSR2, or $SUBMITIT_PREEMPT_SIGNAL) some seconds before a
preemption or time limit, and its handler then requeues the job and exits at once. Without help the
requeued job would redo every step since the last periodic checkpoint. While pretraining runs, this
module holds that signal back until the step in flight has finished (the weights and optimiser are then
consistent), lets the trainer write a checkpoint, and only then hands the signal on to submitit's
handler, which requeues and exits as before.

Outside a submitit job there is no Python handler for the signal, and nothing is changed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator


def preemption_signal() -> signal.Signals:
    """The signal submitit listens to, by the same rule submitit uses."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]


class HeldSignal:
    """The preemption signal, if one arrived while held; `release()` passes it to the original handler."""

    def __init__(self, signum: signal.Signals, handler: Callable | None) -> None:
        self.signum, self._handler, self.received = signum, handler, False

    def _hold(self, signum, frame) -> None:
        self.received = True

    def release(self) -> None:
        """Run the original handler now (submitit's requeues and exits; on other ranks it returns)."""
        if self.received and self._handler is not None:
            self.received = False
            self._handler(self.signum, None)


@contextlib.contextmanager
def hold_preemption_signal() -> Iterator[HeldSignal]:
    """Within the block, the preemption signal only sets `held.received`; the caller checks it at a safe
    point, saves, and calls `held.release()`. A signal still held when the block ends normally is released
    then; if the block raises, the exception wins and the signal is dropped."""
    signum = preemption_signal()
    original = signal.getsignal(signum)
    # Only a Python handler (submitit's) is wrapped: with the default action the signal should still end
    # the process, and signal handlers can only be set from the main thread.
    if not callable(original) or threading.current_thread() is not threading.main_thread():
        yield HeldSignal(signum, None)
        return
    held = HeldSignal(signum, original)
    signal.signal(signum, held._hold)
    try:
        yield held
    except BaseException:  # a failing run fails as it would have: the held signal is dropped
        signal.signal(signum, original)
        raise
    signal.signal(signum, original)
    held.release()
