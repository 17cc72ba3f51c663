"""Shared fixtures: a tiny but real run (scikit-learn digits, a narrow ResNet-18, a few steps)."""

from __future__ import annotations

import dataclasses
import os
import socket
import textwrap
from pathlib import Path

import pytest

from evaluation.record import make_record, upgrade_evaluation
from experiments.manifest import ManifestError, load_manifest
from lejepa.spec import DataSpec, EvalSpec, ModelSpec, RunSpec, TrainSpec, ViewSpec

TINY = RunSpec(
    experiment="tiny",
    seed=0,
    method={"name": "lejepa", "lamb": 0.05, "num_slices": 32},
    data=DataSpec(name="digits"),
    model=ModelSpec(arch="resnet18", timm_kwargs={"channels": [8, 16, 32, 64]}, proj_hidden=64, proj_dim=16),
    views=ViewSpec(global_views=2, local_views=2),
    train=TrainSpec(max_steps=6, batch_size=32, lr=2e-3, checkpoint_every=3, log_every=1),
    eval=EvalSpec(linear_epochs=3, knn_k=(10, 20), linear_lrs=(1e-3, 1e-2)),
)


def free_port() -> int:
    """A TCP port free on localhost now, for a gloo group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tiny_spec(**sections) -> RunSpec:
    """TINY with some sections' fields replaced: make_tiny_spec(train={"max_steps": 10}, seed=1)."""
    changes = {}
    for name, value in sections.items():
        current = getattr(TINY, name)
        if dataclasses.is_dataclass(current):
            changes[name] = dataclasses.replace(current, **value)
        elif isinstance(current, dict):
            changes[name] = {**current, **value}
        else:
            changes[name] = value
    return dataclasses.replace(TINY, **changes)


@pytest.fixture
def tiny_spec():
    return make_tiny_spec


@pytest.fixture
def one_thread():
    """One torch thread for a test that trains: a model this small runs fastest so, and far faster than on
    two threads of a busy machine."""
    from lejepa.threads import one_thread as single_thread

    with single_thread():
        yield


def write_manifest(folder: Path, text: str, name: str = "manifest") -> Path:
    """Write a manifest (indented triple-quoted YAML is fine) as folder/NAME.yaml."""
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def manifest_problems(path: Path, overrides=()) -> str:
    """The message load_manifest refuses this manifest with (the test fails if it is accepted)."""
    with pytest.raises(ManifestError) as caught:
        load_manifest(path, overrides)
    return str(caught.value)


@pytest.fixture
def no_submission(monkeypatch):
    """Creating any submitit executor fails the test: validation or a dry run must stop before submitting."""
    import submitit

    def refuse(*args, **kwargs):
        raise AssertionError("a submitit executor was created, but nothing should have been submitted")

    for name in ("AutoExecutor", "LocalExecutor", "DebugExecutor", "SlurmExecutor"):
        monkeypatch.setattr(submitit, name, refuse)


def synthetic_record(dataset: str = "fashion_mnist", method: dict | None = None, arch: str = "resnet18",
                     seed: int = 0, linear: float | None = 0.8, knn: float | None = 0.75, *,
                     status: str = "done", epochs: float = 1, batch_size: int = 128, local_views: int = 6,
                     loss: float | None = 1.0, wall: float = 60.0, experiment: str = "synthetic",
                     evaluation: dict | None = None, knn_feature: str = "two_block") -> dict:
    """A record laid out exactly as evaluation.record.make_record writes one, from a real RunSpec. `evaluation`
    may use schema 1's keys (linear_top1, few_shot, ...): they are upgraded and merged into the probes."""
    spec = RunSpec(experiment=experiment, seed=seed, method=method or {"name": "lejepa", "lamb": 0.05},
                   data=DataSpec(name=dataset), model=ModelSpec(arch=arch),
                   views=ViewSpec(local_views=local_views), train=TrainSpec(epochs=epochs, batch_size=batch_size))
    done = status == "done"
    pretrain = {"status": status, "steps": 100, "epochs": epochs, "wall_seconds": wall, "images_per_second": 50.0,
                "final_loss": loss if done else None, "final_parts": {"pred": 0.5, "sigreg": 1.0}}
    probes = {"linear": {"top1": linear, "top5": None if linear is None else min(1.0, linear + 0.1), "head": {}},
              "knn": {"feature": knn_feature, "k": [10, 20], "temperature": 0.07, "top1@10": knn,
                      "top1@20": knn}} if done else {}
    extra = upgrade_evaluation(evaluation or {}, {})
    probes.update(extra.pop("probes", {}))
    measured = {**extra, "probes": probes} if probes else extra
    return make_record(spec, status, pretrain=pretrain, evaluation=measured,
                       reason=None if done else "synthetic failure", env={"device": "cpu", "world_size": 1})


class _RunsAShellCommand:
    """Pickles as a call to os.system: loading it the unsafe way (weights_only=False) runs the command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_crafted_checkpoint(path: Path, marker: Path, run_id: str = "run", step: int = 3) -> None:
    """A checkpoint-shaped file that runs `touch marker` when unpickled without weights_only."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"run_id": run_id, "step": step, "payload": _RunsAShellCommand(marker)}, path)
