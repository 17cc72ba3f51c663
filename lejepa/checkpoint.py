"""Atomic checkpoints and resume from the newest valid one.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed
(lejepa/files.py): a job killed mid-write leaves the previous checkpoint intact, and the temporary file of
such a write is removed at the next resume. On resume a file that does not load is moved aside as
`<name>.corrupt` (`.corrupt-2`, ... if that name is taken: kept, never deleted or overwritten) and the next
older one is tried.

Checkpoints hold only tensors and plain Python values, and are loaded with `weights_only=True`: a crafted
file in a results folder (or a `model.init_from` source) cannot run code when it is read.
"""

from __future__ import annotations

import os
import pickle
import re
import threading
import warnings
from pathlib import Path

import torch

from lejepa.files import TEMPORARY_SUFFIX, atomic_write_bytes

CHECKPOINT_PATTERN = re.compile(r"^step_(\d{8})\.pt$")


class CheckpointError(RuntimeError):
    pass


def checkpoint_paths(ckpt_dir: Path) -> list[Path]:
    """Checkpoints in the folder, newest step first."""
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.iterdir() if CHECKPOINT_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def save_checkpoint(ckpt_dir: Path, step: int, state: dict, keep: int = 2) -> Path:
    path = ckpt_dir / f"step_{step:08d}.pt"
    atomic_write_bytes(path, lambda f: torch.save(state, f))
    for old in checkpoint_paths(ckpt_dir)[keep:]:
        old.unlink(missing_ok=True)
    return path


def snapshot(state):
    """A copy of `state` on the CPU, safe to write while training goes on (the live tensors keep changing)."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: snapshot(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(snapshot(v) for v in state)
    return state


class CheckpointWriter:
    """Writes checkpoints in a background thread, one at a time: the step after `save` starts at once while
    the file is written (a ViT-H checkpoint is GBs). `wait()` returns when everything handed over is on disk
    and re-raises a failed write's error (a full disk, say) in the training thread."""

    def __init__(self, ckpt_dir: Path, keep: int = 2):
        self.ckpt_dir, self.keep = Path(ckpt_dir), keep
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, step: int, state: dict) -> None:
        self.wait()
        copied = snapshot(state)

        def write() -> None:
            try:
                save_checkpoint(self.ckpt_dir, step, copied, self.keep)
            except BaseException as error:  # noqa: BLE001  handed to the training thread by wait()
                self._error = error

        self._thread = threading.Thread(target=write, name=f"checkpoint-{step}", daemon=False)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


WEIGHTS_NAME = "weights.pt"


def export_weights(run_dir: Path, run_id: str, step: int, model_state: dict) -> Path:
    """The final weights alone (no optimiser, no RNG): what evaluation and transfer runs load."""
    path = Path(run_dir) / WEIGHTS_NAME
    atomic_write_bytes(path, lambda f: torch.save({"run_id": run_id, "step": step, "model": model_state}, f))
    return path


def load_final_weights(run_dir: Path, run_id: str) -> dict | None:
    """{"step", "model"} of a finished run: its weights export, else its newest checkpoint (runs from before
    the export existed)."""
    path = Path(run_dir) / WEIGHTS_NAME
    if path.exists():
        state = load_state(path)
        if state.get("run_id") == run_id:
            return state
    return load_latest_checkpoint(Path(run_dir) / "ckpt", run_id)


def load_state(path: Path) -> dict:
    """A checkpoint's contents, refusing anything but tensors and plain values (no code runs on load)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's text suggests weights_only=False, which is exactly what must not be done with such a file.
        needs = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line), str(error)[:200])
        raise ValueError(f"it holds Python objects that only code could rebuild, not just tensors and plain "
                         f"values ({needs}); refused without running anything (a crafted or foreign file?)") from None
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError("not a lejepa-bench checkpoint (no 'step')")
    return state


def set_aside(path: Path) -> Path:
    """Rename an unreadable file to <name>.corrupt, or .corrupt-N when that exists: earlier copies stay."""
    aside, number = path.with_name(path.name + ".corrupt"), 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.corrupt-{number}")
    os.replace(path, aside)
    return aside


def remove_interrupted_writes(folder: Path) -> None:
    """Temporary files of writes that were killed before their rename (only the run's one trainer writes
    here, and it is the caller)."""
    if folder.is_dir():
        for stale in folder.glob(f".*{TEMPORARY_SUFFIX}"):
            stale.unlink(missing_ok=True)


def load_latest_checkpoint(ckpt_dir: Path, run_id: str) -> dict | None:
    """The newest checkpoint that loads and belongs to `run_id`; None when there is none at all."""
    remove_interrupted_writes(ckpt_dir)
    for path in checkpoint_paths(ckpt_dir):
        try:
            state = load_state(path)
        except Exception as error:  # noqa: BLE001  truncated, zeroed, foreign or unsafe file: set it aside
            aside = set_aside(path)
            warnings.warn(f"checkpoint {path} is unreadable ({error}); kept as {aside.name}, trying an older one",
                          stacklevel=2)
            continue
        if state.get("run_id") != run_id:
            raise CheckpointError(
                f"checkpoint {path} belongs to run '{state.get('run_id')}', not '{run_id}': the run folder "
                f"was reused for a different spec. Move {ckpt_dir} away (or use a fresh results folder)."
            )
        return state
    corrupt = sorted(ckpt_dir.glob("*.corrupt*")) if ckpt_dir.is_dir() else []
    if corrupt:
        raise CheckpointError(
            f"no readable checkpoint in {ckpt_dir}: {', '.join(p.name for p in corrupt)} could not be loaded. "
            f"To restart this run from scratch, move those files out of {ckpt_dir}."
        )
    return None
