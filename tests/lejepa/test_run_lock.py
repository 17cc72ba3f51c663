"""The run folder's lock (lejepa/run_lock.py): one holder at a time, freed when its holder dies however it
dies, and never refused to a trainer because `lejepa status` looked at it at that instant."""

import fcntl
import os
import signal
import subprocess
import sys
import threading

import pytest

from lejepa.run_lock import LOCK_NAME, RunLocked, is_locked, run_lock


def _hold(folder) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from lejepa.run_lock import run_lock\n"
        f"with run_lock({str(folder)!r}):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_held_run_is_refused_by_name_and_freed_when_its_holder_is_killed(tmp_path):
    holder = _hold(tmp_path)
    try:
        assert is_locked(tmp_path).startswith(f"pid {holder.pid} on {os.uname().nodename} since ")
        refused = pytest.raises(RunLocked, match=f"run folder {tmp_path} is in use by pid {holder.pid} on .*wait for it")
        with refused, run_lock(tmp_path):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)  # no cleanup code runs: the kernel drops the lock
        holder.wait()
    assert is_locked(tmp_path) is None
    with run_lock(tmp_path):
        assert is_locked(tmp_path) is not None


def test_a_status_probe_at_the_moment_a_trainer_starts_does_not_turn_it_away(tmp_path):
    (tmp_path / LOCK_NAME).touch()
    with open(tmp_path / LOCK_NAME) as probe:
        fcntl.flock(probe, fcntl.LOCK_SH)  # what is_locked holds for an instant
        threading.Timer(0.3, fcntl.flock, (probe, fcntl.LOCK_UN)).start()
        with run_lock(tmp_path):
            assert "pid" in (tmp_path / LOCK_NAME).read_text()
