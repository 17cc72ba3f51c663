"""Atomic checkpoints and resume from the newest valid one (DESIGN.md sections 1 and 4).

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed: a job
killed mid-write leaves the previous checkpoint intact. On resume a file that does not load is moved
aside as `<name>.corrupt` (kept, never deleted) and the next older one is tried.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path

import torch

CHECKPOINT_PATTERN = re.compile(r"^step_(\d{8})\.pt$")


class CheckpointError(RuntimeError):
    pass


def atomic_write_bytes(path: Path, write) -> None:
    """Call write(file) on a temporary sibling of `path`, fsync, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def load_latest_checkpoint(ckpt_dir: Path, run_id: str) -> dict | None:
    """The newest checkpoint that loads and belongs to `run_id`; None when there is none at all."""
    paths = checkpoint_paths(ckpt_dir)
    for path in paths:
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            if not isinstance(state, dict) or "step" not in state:
                raise ValueError("not a lejepa-bench checkpoint")
        except Exception as error:  # noqa: BLE001  truncated, zeroed or foreign file: keep it aside, try an older one
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            warnings.warn(f"checkpoint {path} is unreadable ({error}); kept as {aside.name}, trying an older one")
            continue
        if state.get("run_id") != run_id:
            raise CheckpointError(
                f"checkpoint {path} belongs to run '{state.get('run_id')}', not '{run_id}': the run folder "
                f"was reused for a different spec. Move {ckpt_dir} away (or use a fresh results folder)."
            )
        return state
    corrupt = sorted(ckpt_dir.glob("*.corrupt")) if ckpt_dir.is_dir() else []
    if corrupt:
        raise CheckpointError(
            f"no readable checkpoint in {ckpt_dir}: {', '.join(p.name for p in corrupt)} could not be loaded. "
            f"To restart this run from scratch, move those files out of {ckpt_dir}."
        )
    return None
