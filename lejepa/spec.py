"""RunSpec: one fully resolved, JSON-serialisable run (DESIGN.md section 1).

A manifest expands into RunSpecs; training, evaluation and the record read only the spec. Sections are
plain frozen dataclasses whose field names are the manifest's keys, so validation is "is this a field".
The method section is a free mapping here: each method validates its own options (lejepa.methods).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DataSpec:
    name: str = "fashion_mnist"
    root: str | None = None  # None: the dataset's default location (see `lejepa list datasets`)
    image_size: int | None = None  # None: the dataset's native size
    train_limit: int | None = None  # use only the first N (class-balanced shuffle) training images
    test_limit: int | None = None
    num_workers: int = 0


@dataclass(frozen=True)
class ModelSpec:
    arch: str = "resnet18"  # any timm architecture name
    small_image_stem: bool | None = None  # None: adapt the stem/patch when images are <= 64 px
    proj_hidden: int = 2048
    proj_layers: int = 3  # linear layers in the BatchNorm MLP projector
    proj_dim: int = 128
    sync_batchnorm: bool = False
    timm_kwargs: dict = field(default_factory=dict)
    # Weights from another run, "EXPERIMENT/RUN_ID" under the results root (a manifest may name the source
    # manifest instead; it is resolved to the one run of it with this model, method and seed). Such a run
    # does not pretrain (train.epochs 0): it evaluates the source's final weights on this run's dataset,
    # e.g. transfer from ImageNet-1k (evaluation.transfer_from in the record says from where).
    init_from: str | None = None


@dataclass(frozen=True)
class ViewSpec:
    """Multi-crop views (DESIGN section 3). Sizes None: scaled from the image size (224/98 at 224 px)."""

    global_views: int = 2
    local_views: int = 6
    global_size: int | None = None
    local_size: int | None = None
    global_scale: tuple[float, float] = (0.3, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.3)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # crop aspect-ratio range (RandomResizedCrop's default)
    color_jitter: float = 0.8  # probability; strengths are the paper's (0.4, 0.4, 0.2, 0.1)
    grayscale: float = 0.2
    blur: float = 0.5
    solarize: float = 0.2
    batched: bool | None = None  # None: batched views for in-memory fixed-size datasets (lejepa/views.py)


@dataclass(frozen=True)
class TrainSpec:
    epochs: float = 100
    max_steps: int | None = None  # caps the step count computed from epochs
    batch_size: int = 256
    lr: float = 5e-4
    weight_decay: float = 5e-2
    warmup_fraction: float = 0.1  # of the total steps, linear from 0
    min_lr_ratio: float = 1e-3  # cosine decays to lr * min_lr_ratio
    grad_clip: float | None = None
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU; or "fp32" / "bf16"
    device: str = "auto"
    compile: bool = False
    checkpoint_every: int = 200  # steps
    log_every: int = 10


@dataclass(frozen=True)
class EvalSpec:
    """Frozen-backbone evaluation (DESIGN section 4)."""

    linear: bool = True
    knn: bool = True
    knn_k: tuple[int, ...] = (10, 20, 100, 200)
    knn_temperature: float = 0.07
    linear_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    linear_epochs: int = 20
    linear_batch_size: int = 256
    linear_weight_decay: float = 1e-6
    holdout_fraction: float = 0.1  # of train, to choose the head; test is used once
    few_shot: tuple[int, ...] = ()  # shots per class, e.g. (1, 10); evaluated with few_shot_draws draws
    few_shot_draws: int = 3
    batch_size: int = 256  # feature extraction


@dataclass(frozen=True)
class ResourceSpec:
    """Where and how big a job is. Not part of run_id: moving a run to another partition is the same run."""

    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int = 1
    cpus_per_task: int = 2
    mem_gb: int = 8
    time_min: int = 60
    partition: str | None = None
    account: str | None = None
    constraint: str | None = None
    qos: str | None = None


SECTIONS: dict[str, type] = {
    "data": DataSpec,
    "model": ModelSpec,
    "views": ViewSpec,
    "train": TrainSpec,
    "eval": EvalSpec,
    "resources": ResourceSpec,
}


@dataclass(frozen=True)
class RunSpec:
    experiment: str
    seed: int = 0
    method: dict = field(default_factory=lambda: {"name": "lejepa"})
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    views: ViewSpec = field(default_factory=ViewSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    resources: ResourceSpec = field(default_factory=ResourceSpec)

    @property
    def method_name(self) -> str:
        return self.method["name"]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        sections = {
            name: section_type(**_tuples_for(section_type, data.get(name, {})))
            for name, section_type in SECTIONS.items()
        }
        return cls(experiment=data["experiment"], seed=data.get("seed", 0), method=dict(data["method"]), **sections)

    def canonical_json(self) -> str:
        identity = self.to_dict()
        del identity["resources"]
        return json.dumps(identity, sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        """Readable prefix + a hash of everything that changes the result (resources excluded)."""
        digest = hashlib.sha256(self.canonical_json().encode()).hexdigest()[:10]
        arch = self.model.arch.replace("/", "_")
        return f"{self.method_name}-{self.data.name}-{arch}-s{self.seed}-{digest}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _tuples_for(section_type: type, values: dict[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists; give tuple-typed fields their tuples back so specs compare equal."""
    tuple_fields = {f.name for f in dataclasses.fields(section_type) if str(f.type).startswith("tuple")}
    return {k: tuple(v) if k in tuple_fields and isinstance(v, list) else v for k, v in values.items()}
