"""The frozen linear probe (docs/evaluation.md section 2): the official README's LayerNorm + linear head,
a grid of heads trained in one pass, the one best on a held-out part of train evaluated on test once
(evaluation/linear_probe.py does the work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from evaluation.linear_probe import linear_probe
from evaluation.probes.base import Metric, Probe, ProbeContext, register_probe
from lejepa.options import Validated, positive, setting

PROTOCOL = {"eval": "frozen_linear", "probe": "readme"}


@dataclass(frozen=True)
class LinearOptions(Validated):
    OWNER = "linear"
    lrs: tuple[float, ...] = positive((1e-3, 3e-3, 1e-2, 3e-2), "learning rates of the head grid")
    epochs: int = positive(20, "epochs over the fit split")
    batch_size: int = positive(256, "mini-batch size")
    weight_decay: float = setting(1e-6, doc="AdamW weight decay", low=0)
    holdout_fraction: float = setting(0.1, doc="fraction of train held out to choose the head", low=0, high=1,
                                      low_open=True, high_open=True)


@register_probe
class LinearProbe(Probe):
    name = "linear"
    summary = "frozen linear probe: LayerNorm + linear heads, chosen on a held-out 10% of train (README protocol)"
    Options = LinearOptions
    legacy: ClassVar[dict[str, str]] = {"lrs": "linear_lrs", "epochs": "linear_epochs", "batch_size": "linear_batch_size",
              "weight_decay": "linear_weight_decay", "holdout_fraction": "holdout_fraction"}

    def run(self, context: ProbeContext) -> dict:
        o = self.options
        # The heads train where linear_probe puts them (the CPU, today: it takes no device).
        result = linear_probe(
            context.train.frozen, context.train.labels, context.test.frozen, context.test.labels,
            context.num_classes, lrs=o.lrs, choices=context.choices, epochs=o.epochs, batch_size=o.batch_size,
            weight_decay=o.weight_decay, holdout_fraction=o.holdout_fraction, seed=context.spec.seed,
        )
        context.handed_on[self.name] = result
        head = {"lr": result.lr, "features": result.features, "holdout_top1": result.holdout_top1}
        for optional in ("norm", "name", "steps"):  # named heads (issue 19's probe) say what won
            if getattr(result, optional, None) is not None:
                head[optional] = getattr(result, optional)
        return {"top1": result.top1, "top5": result.top5, "head": head}

    @classmethod
    def metrics(cls, section: dict) -> list[Metric]:
        norm = (section.get("head") or {}).get("norm")
        protocol = {**PROTOCOL, **({"norm": norm} if norm else {})}
        return [Metric("linear_top1", f"{cls.section_path()}.top1", "linear top-1", protocol, headline=True),
                Metric("linear_top5", f"{cls.section_path()}.top5", "linear top-5", protocol, compare=False)]

    @classmethod
    def standing(cls) -> list[Metric]:
        return cls.metrics({})
