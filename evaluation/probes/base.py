"""The probe interface and registry, mirroring the method registry (lejepa/methods/registry.py).

A probe is one file under evaluation/probes/ with a `Probe` subclass decorated by `register_probe` (and its
import in evaluation/probes/__init__.py). It declares:

- `Options`, a validated dataclass (lejepa/options.py), set in a manifest as
  `eval.probe_options: {NAME: {OPTION: VALUE}}`; `legacy` names the EvalSpec fields that set an option
  before the registry existed (knn's `k` <- `eval.knn_k`), which stay its defaults so old runs recompute
  their old numbers;
- `run(context)`: its record section (evaluation.probes.NAME), from the features every probe shares
  (evaluation/evaluate.py extracts them once);
- `metrics(section)`: the numbers in such a section, each with its report column, label and protocol (a
  mapping like a reference number's: {"eval": "knn", "k": 20, "temperature": 0.07, ...}, which is what the
  report matches reference numbers by), and which one is its headline.

Reports, figures and `lejepa status` read metric names and labels only from here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from lejepa.names import did_you_mean, register_once
from lejepa.options import OptionError, check_value
from lejepa.spec import EvalSpec, RunSpec


@dataclass(frozen=True)
class Metric:
    column: str  # report column (summary CSV), e.g. "knn_top1@20"
    path: str  # dotted path in a flattened record, e.g. "evaluation.probes.knn.top1@20"
    label: str  # e.g. "kNN@20 top-1"
    protocol: dict  # e.g. {"eval": "knn", "k": 20, "temperature": 0.07, "feature": "last_cls"}
    percent: bool = True  # a fraction in the record, a percentage in tables
    compare: bool = True  # the report sets a reference number of the same protocol beside it
    headline: bool = False  # the probe's one number (console table, status line, figures)


@dataclass(frozen=True)
class SplitFeatures:
    frozen: torch.Tensor  # (N, F) Backbone.features of the evaluated backbone (docs/evaluation.md section 1)
    labels: torch.Tensor
    pooled: torch.Tensor | None = None  # (N, D) Backbone.forward of the trained backbone (online probe)


@dataclass
class ProbeContext:
    """What every probe reads: features extracted once, the run, and what earlier probes hand on."""

    spec: RunSpec
    num_classes: int
    train: SplitFeatures
    test: SplitFeatures
    choices: dict[str, slice]  # named column ranges of the frozen features ("all", "last_block" for tokens)
    kind: str  # "tokens" (ViT-like: [CLS block -2 | CLS block -1]), "pooled" (CNNs) or "pixels"
    device: torch.device
    online_probe: Any = None  # lejepa.online_probe.OnlineProbe when it was trained, else None
    handed_on: dict[str, Any] = field(default_factory=dict)  # e.g. the linear probe's ProbeResult


class Probe:
    name: ClassVar[str]
    summary: ClassVar[str] = ""  # one line for `lejepa list probes` / `lejepa describe probe NAME`
    Options: ClassVar[type]
    legacy: ClassVar[dict[str, str]] = {}  # option -> EvalSpec field whose value is its default
    requires: ClassVar[tuple[str, ...]] = ()  # probes that must run before it (in eval.probes, earlier)

    def __init__(self, options):
        self.options = options

    def run(self, context: ProbeContext) -> dict:
        raise NotImplementedError

    @classmethod
    def metrics(cls, section: dict) -> list[Metric]:
        """The numbers of a record section this probe wrote (or an older record's, upgraded)."""
        raise NotImplementedError

    @classmethod
    def standing(cls) -> list[Metric]:
        """Columns the report shows even when no record has them (the ones it always showed)."""
        return []

    @classmethod
    def section_path(cls) -> str:
        return f"evaluation.probes.{cls.name}"


PROBES: dict[str, type[Probe]] = {}


def register_probe(cls: type[Probe]) -> type[Probe]:
    return register_once(PROBES, "probe", cls.name, cls)


def get_probe(name: str) -> type[Probe]:
    if name not in PROBES:
        raise KeyError(f"unknown probe '{name}'{did_you_mean(name, PROBES)} (known: {', '.join(PROBES)}; "
                       f"see `lejepa list probes`)")
    return PROBES[name]


def probe_options(cls: type[Probe], eval_spec: EvalSpec):
    """The probe's validated Options: legacy EvalSpec fields, then eval.probe_options[name] over them."""
    given = eval_spec.probe_options.get(cls.name) or {}
    known = [f.name for f in dataclasses.fields(cls.Options)]
    values = {option: getattr(eval_spec, spec_field) for option, spec_field in cls.legacy.items()}
    problems = []
    for key, value in given.items():
        if key not in known:
            problems.append((key, (f"probe '{cls.name}' has no option '{key}'{did_you_mean(key, known)} "
                                   f"(options: {', '.join(known) or 'none'})")))
            continue
        values[key], problem = check_value(cls.Options, key, value, as_float=True)
        if problem:
            problems.append((key, problem))
    if problems:
        raise OptionError(cls.name, problems)
    return cls.Options(**values)


def probe_problems(eval_spec: EvalSpec) -> list[tuple[str, str]]:
    """(dotted key, message) for each unknown probe, bad option or probe listed before one it needs."""
    names = eval_spec.probe_names()
    problems = []
    for position, name in enumerate(names):
        try:
            cls = get_probe(name)
        except KeyError as error:
            problems.append(("eval.probes", str(error.args[0])))
            continue
        missing = [need for need in cls.requires if need not in names[:position]]
        if missing:
            problems.append(("eval.probes", (f"probe '{name}' reads the results of {', '.join(missing)}: "
                                             f"list {' and '.join(missing)} before {name}")))
        try:
            probe_options(cls, eval_spec)
        except OptionError as error:
            problems += [(f"eval.probe_options.{name}.{key}" if key else f"eval.probe_options.{name}", message)
                         for key, message in error.problems]
    for name in eval_spec.probe_options:
        if name not in names:
            problems.append((f"eval.probe_options.{name}", (f"options for probe '{name}', which this run does "
                                                            f"not run (eval.probes: {list(names)}): add it or "
                                                            f"drop them")))
    return problems


def build_probes(spec: RunSpec) -> list[Probe]:
    """The run's probes with their options, in eval.probes order; ValueError lists every problem."""
    problems = probe_problems(spec.eval)
    if problems:
        raise ValueError("; ".join(f"{key}: {message}" for key, message in problems))
    return [get_probe(name)(probe_options(get_probe(name), spec.eval)) for name in spec.eval.probe_names()]


def record_metrics(record: dict) -> list[Metric]:
    """Every metric a record holds, probe by probe in registry order (the record upgraded: evaluation/record.py).
    A section of a probe this version does not know is left out."""
    sections = ((record.get("evaluation") or {}).get("probes")) or {}
    return [metric for name, cls in PROBES.items() if isinstance(sections.get(name), dict)
            for metric in cls.metrics(sections[name])]


def protocol_text(protocol: dict) -> str:
    """A metric's protocol in words: 'kNN k=20 T=0.07, feature last_cls', 'frozen linear (LayerNorm /
    standardised / whitened heads x lrs, AdamW, chosen on held-out cross-entropy)'."""
    from evaluation.references import protocol_label

    text = protocol_label({"protocol": protocol})
    extras = [f"{key} {protocol[key]}" for key in ("feature", "views") if protocol.get(key)]
    return ", ".join([text, *extras])
