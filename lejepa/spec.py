"""RunSpec: one fully resolved, JSON-serialisable run (docs/pipeline.md section 1).

A manifest expands into RunSpecs; training, evaluation and the record read only the spec. Each section is
a frozen dataclass whose field names are the manifest's keys and which checks its own values on
construction (type, range, allowed choices: lejepa/options.py), so a bad value is refused before anything is
queued, whichever way the spec was built. The method section is a free mapping here: each method's options
dataclass validates it (lejepa/methods).

run_id is a readable prefix plus a hash of the spec's canonical JSON, resources excluded. The rule for
changing the spec without changing the ids of runs already made (so relaunching a finished study reruns
nothing): a new field must default to the behaviour from before it existed and is declared with
`added=True`; it is then left out of the hash while it holds that default. A changed default is declared
with `was=<the old default>`, which the hash keeps using while the field holds the new default (only where
the new default computes what the old one did for every run made so far). Renaming or removing a field
changes ids: tests/lejepa/test_spec.py pins ids to catch it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from lejepa.options import Validated, check_value, fraction, positive, rule_of, setting

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Characters an sbatch option value may hold: no space, newline, quote, '#', '$' or ';', which would end the
# #SBATCH line or reach the shell.
SBATCH_VALUE = re.compile(r"^[A-Za-z0-9_.,:&|()\[\]*!%+=@/-]+$")


@dataclass(frozen=True)
class DataSpec(Validated):
    OWNER = "data"
    name: str = setting("fashion_mnist", doc="dataset (see `lejepa list datasets`)")
    root: str | None = setting(None, doc="folder holding the dataset; null: its default under $LEJEPA_DATA_ROOT")
    image_size: int | None = positive(None, "training resolution in px; null: the dataset's native size")
    train_limit: int | None = positive(None, "use only this many training images (class-balanced)")
    test_limit: int | None = positive(None, "use only this many test images (class-balanced)")
    num_workers: int | str = setting(0, doc="data-loader worker processes, or 'auto': the CPUs the job was granted "
                                            "minus one")

    def cross_checks(self) -> list[tuple[str, str]]:
        if self.num_workers == "auto" or (isinstance(self.num_workers, int) and self.num_workers >= 0):
            return []
        return [("num_workers", f"must be an integer >= 0 or 'auto', got {self.num_workers!r}")]


@dataclass(frozen=True)
class ModelSpec(Validated):
    OWNER = "model"
    arch: str = setting("resnet18", doc="any timm architecture name")
    small_image_stem: bool | None = setting(None, doc="adapt stem/patch for small images; null: when <= 64 px")
    proj_hidden: int = positive(2048, "hidden width of the BatchNorm MLP projector")
    proj_layers: int = positive(3, "linear layers in the projector")
    proj_dim: int = positive(128, "projector output width (the embedding SIGReg sees)")
    # Default null (auto): on for multi-GPU runs, where per-GPU BatchNorm over 16-64 images differs from the
    # paper's global batch; off otherwise (one process, or CPU ranks: SyncBatchNorm has no CPU kernel). It was
    # false, which the same runs computed until now (no multi-GPU run existed), so ids keep hashing false.
    sync_batchnorm: bool | None = setting(None, doc="BatchNorm statistics over the global batch; null: on for "
                                                    "multi-GPU runs", was=False)
    timm_kwargs: dict = setting(default_factory=dict, doc="extra timm.create_model arguments")
    # "EXPERIMENT/RUN_ID" under the results root (a manifest may name the source manifest instead; it resolves
    # to the one run of it with this model, method and seed). Such a run does not pretrain (train.epochs 0):
    # it evaluates the source's final weights on this run's dataset (transfer).
    init_from: str | None = setting(None, doc="evaluate another run's final weights: EXPERIMENT/RUN_ID")


@dataclass(frozen=True)
class ViewSpec(Validated):
    """Multi-crop views. Sizes null: scaled from the image size (the official 224/98 px at 224 px)."""

    OWNER = "views"
    global_views: int = positive(2, "global crops per image (the prediction target is their mean)")
    local_views: int = setting(6, doc="local crops per image", low=0)
    global_size: int | None = positive(None, "global crop size in px")
    local_size: int | None = positive(None, "local crop size in px")
    global_scale: tuple[float, float] = setting((0.3, 1.0), doc="area fraction range of global crops",
                                                low=0, high=1, low_open=True)
    local_scale: tuple[float, float] = setting((0.05, 0.3), doc="area fraction range of local crops",
                                               low=0, high=1, low_open=True)
    ratio: tuple[float, float] = positive((3 / 4, 4 / 3), "crop aspect-ratio range")
    color_jitter: float = fraction(0.8, "probability of colour jitter")
    jitter_strengths: tuple[float, float, float, float] | None = setting(
        None, doc="colour-jitter strengths (brightness, contrast, saturation, hue), as torchvision's ColorJitter "
        "takes them; null: the method's own recipe (Method.VIEW_RECIPE)", low=0, added=True)
    grayscale: float = fraction(0.2, "probability of grayscale")
    blur: float = fraction(0.5, "probability of Gaussian blur")
    solarize: float = fraction(0.2, "probability of solarisation")
    batched: bool | None = setting(None, doc="null/true: photometry per batch on the training device (in-memory "
                                              "datasets: crops too); false: everything per image on the CPU")

    def cross_checks(self) -> list[tuple[str, str]]:
        problems = []
        for name in ("global_scale", "local_scale", "ratio"):
            low, high = getattr(self, name)
            if low > high:
                problems.append((name, f"the range must be [low, high] with low <= high, got {[low, high]}"))
        if self.jitter_strengths is not None:
            strengths = tuple(self.jitter_strengths)
            if len(strengths) != 4 or max(strengths[:3]) > 1 or strengths[3] > 0.5:
                why = ("give 4 values [brightness, contrast, saturation, hue], the first three at most 1 and hue "
                       f"at most 0.5, got {list(strengths)}")
                problems.append(("jitter_strengths", why))
        return problems


@dataclass(frozen=True)
class TrainSpec(Validated):
    OWNER = "train"
    epochs: float = setting(100, doc="passes over the training images (0 only for model.init_from runs)", low=0)
    max_steps: int | None = positive(None, "caps the step count computed from epochs")
    batch_size: int = positive(256, "global batch size (images; each gives several views)")
    lr: float = positive(5e-4, "peak AdamW learning rate")
    weight_decay: float = setting(5e-2, doc="AdamW weight decay (biases and norms excluded)", low=0)
    warmup_fraction: float = fraction(0.1, "fraction of the steps of linear warm-up")
    min_lr_ratio: float = fraction(1e-3, "the cosine decays to lr * min_lr_ratio")
    grad_clip: float | None = positive(None, "clip the gradient norm to this")
    precision: str = setting("auto", doc="auto: bf16 autocast on CUDA, fp32 on CPU", choices=("auto", "fp32", "bf16"))
    device: str = setting("auto", doc="auto, cpu, cuda or cuda:N")
    compile: bool = setting(False, doc="torch.compile the training step")
    checkpoint_every: int = positive(200, "steps between checkpoints")
    log_every: int = positive(10, "steps between metrics.jsonl lines")

    def cross_checks(self) -> list[tuple[str, str]]:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            return [("device", f"must be auto, cpu, cuda or cuda:N, got {self.device!r}")]
        return []


@dataclass(frozen=True)
class EvalSpec(Validated):
    """Frozen-backbone evaluation (docs/evaluation.md)."""

    OWNER = "eval"
    linear: bool = setting(True, doc="train the linear probe")
    knn: bool = setting(True, doc="run the kNN classifier")
    knn_k: tuple[int, ...] = positive((10, 20, 100, 200), "neighbour counts reported")
    knn_temperature: float = positive(0.07, "temperature of the kNN vote weights exp(sim / T)")
    # DINOv2's 13 probe learning rates (dinov2/eval/linear.py), trained in one stacked pass
    # (evaluation/linear_probe.py); run ids hash the old 4-value default while the field holds these.
    linear_lrs: tuple[float, ...] = positive(
        (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1),
        "learning rates of the probe's head grid (each with every normalisation)", was=(1e-3, 3e-3, 1e-2, 3e-2))
    linear_epochs: int = positive(20, "epochs of the linear probe")
    linear_batch_size: int = positive(256, "batch size of the linear probe")
    linear_weight_decay: float = setting(1e-6, doc="weight decay of the linear probe", low=0)
    holdout_fraction: float = setting(0.1, doc="fraction of train held out to choose the head", low=0, high=1,
                                      low_open=True, high_open=True)
    few_shot: tuple[int, ...] = positive((), "shots per class, e.g. [1, 10]")
    few_shot_draws: int = positive(3, "independent draws per few-shot setting")
    batch_size: int = positive(256, "batch size of feature extraction")
    # The probe registry (evaluation/probes/, `lejepa list probes`). null: the probes the switches above name
    # (linear, then few_shot when `few_shot` lists shots, then knn), which is what every run made before these
    # fields existed ran; a probe's options default to the fields above that set them before.
    probes: tuple[str, ...] | None = setting(None, doc="probes to run, e.g. [linear, knn, online_linear] (see "
                                                       "`lejepa list probes`); null: as linear/knn/few_shot say",
                                             added=True)
    probe_options: dict = setting(default_factory=dict, doc="options per probe, e.g. {knn: {feature: last_cls, "
                                                            "k: [20, 200]}} (see `lejepa describe probe NAME`)",
                                  added=True)

    def cross_checks(self) -> list[tuple[str, str]]:
        problems = []
        if self.probes is not None and len(set(self.probes)) != len(self.probes):
            problems.append(("probes", f"lists a probe twice: {list(self.probes)}"))
        for name, options in self.probe_options.items():
            if not isinstance(options, dict):
                problems.append(("probe_options", f"{name}: expected a mapping of option: value, got {options!r}"))
        return problems

    def probe_names(self) -> tuple[str, ...]:
        """The probes this run evaluates with, in order: `probes`, or the ones the legacy switches name."""
        if self.probes is not None:
            return self.probes
        return (*(("linear",) if self.linear else ()), *(("few_shot",) if self.linear and self.few_shot else ()),
                *(("knn",) if self.knn else ()))


@dataclass(frozen=True)
class ResourceSpec(Validated):
    """Where and how big a job is. Not part of run_id: moving a run to another partition is the same run."""

    OWNER = "resources"
    nodes: int = positive(1, "nodes per run")
    gpus_per_node: int = setting(0, doc="GPUs per node", low=0)
    tasks_per_node: int = positive(1, "processes per node (one per GPU)")
    cpus_per_task: int = positive(2, "CPU cores per process")
    mem_gb: int = positive(8, "memory per node in GB")
    time_min: int = positive(60, "time limit in minutes")
    partition: str | None = setting(None, doc="SLURM partition")
    account: str | None = setting(None, doc="SLURM account")
    constraint: str | None = setting(None, doc="SLURM constraint")
    qos: str | None = setting(None, doc="SLURM quality of service")

    def cross_checks(self) -> list[tuple[str, str]]:
        return [(name, (f"{getattr(self, name)!r} holds a character sbatch would misread (space, newline, quote, "
                       f"'#', '$' or ';'); allowed: letters, digits and _ . , : & | ( ) [ ] * ! % + = @ / -"))
                for name in ("partition", "account", "constraint", "qos")
                if getattr(self, name) is not None and not SBATCH_VALUE.match(getattr(self, name))]


SECTIONS: dict[str, type] = {
    "data": DataSpec,
    "model": ModelSpec,
    "views": ViewSpec,
    "train": TrainSpec,
    "eval": EvalSpec,
    "resources": ResourceSpec,
}


class SpecError(ValueError):
    """Problems of a spec as (dotted key, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))


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

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.experiment, str) or not NAME_PATTERN.match(self.experiment):
            problems.append(("experiment", (f"must be letters, digits, '_', '-' or '.' (it names the folder "
                                           f"results/<experiment>), got {json.dumps(self.experiment)}")))
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            problems.append(("seed", f"must be an integer >= 0, got {json.dumps(self.seed)}"))
        if not isinstance(self.method, dict) or not isinstance(self.method.get("name"), str):
            problems.append(("method", f"must be a mapping with a 'name', got {json.dumps(self.method)}"))
        if problems:
            raise SpecError(problems)

    @property
    def method_name(self) -> str:
        return self.method["name"]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Build and validate; a SpecError lists every bad field as 'section.field'."""
        sections, problems = {}, []
        for name, section_type in SECTIONS.items():
            try:
                sections[name] = build_section(section_type, data.get(name) or {})
            except SpecError as error:
                problems += [(f"{name}.{key}", message) for key, message in error.problems]
        if problems:
            raise SpecError(problems)
        return cls(experiment=data["experiment"], seed=data.get("seed", 0), method=dict(data["method"]), **sections)

    def canonical_json(self) -> str:
        identity = self.to_dict()
        del identity["resources"]
        for name, section_type in SECTIONS.items():
            for f in dataclasses.fields(section_type) if name in identity else ():
                rule = rule_of(f)
                if identity[name][f.name] != _jsonable(_default(f)):
                    continue
                if rule.added:
                    del identity[name][f.name]
                elif rule.was_set:
                    identity[name][f.name] = _jsonable(rule.was)
        return json.dumps(identity, sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        """Readable prefix + a hash of everything that changes the result (resources excluded)."""
        digest = hashlib.sha256(self.canonical_json().encode()).hexdigest()[:10]
        arch = self.model.arch.replace("/", "_")
        return f"{self.method_name}-{self.data.name}-{arch}-s{self.seed}-{digest}"


def build_section(section_type: type, values: dict[str, Any]):
    """A section from a mapping; unknown keys and bad values raise SpecError naming each field."""
    known = {f.name for f in dataclasses.fields(section_type)}
    problems = [(key, f"{section_type.OWNER} has no key '{key}'") for key in values if key not in known]
    checked = {}
    for key, value in values.items():
        if key in known:
            checked[key], problem = check_value(section_type, key, value)
            if problem:
                problems.append((key, problem))
    if problems:
        raise SpecError(problems)
    try:
        return section_type(**checked)
    except ValueError as error:  # OptionError from cross-field rules
        raise SpecError(getattr(error, "problems", [("", str(error))])) from None


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
