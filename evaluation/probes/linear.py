"""The frozen linear probe (docs/evaluation.md section 2): a grid of heads, normalisation (LayerNorm as the
official README, standardisation, whitening) x DINOv2's 13 learning rates x feature choice, trained in one
stacked pass; the head with the lowest held-out cross-entropy is evaluated on test once
(evaluation/linear_probe.py does the work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from evaluation.linear_probe import DEFAULT_LRS, linear_probe
from evaluation.probes.base import Metric, Probe, ProbeContext, register_probe
from lejepa.options import Validated, positive, setting

# Set beside the paper's `readme` numbers: the README's head (LayerNorm + linear, AdamW) is one of the grid's.
PROTOCOL = {"eval": "frozen_linear", "probe": "readme", "heads": "grid"}
# What records written before the grid were measured by: LayerNorm heads only, 3 lrs, chosen on held-out top-1.
# Their head has no `norm`; they keep this label, so a group mixing both has no single protocol.
LAYERNORM_ONLY = {"eval": "frozen_linear", "probe": "readme"}


@dataclass(frozen=True)
class LinearOptions(Validated):
    OWNER = "linear"
    lrs: tuple[float, ...] = positive(DEFAULT_LRS, "learning rates of the head grid (each with every normalisation)")
    epochs: int = positive(20, "epochs over the fit split")
    batch_size: int = positive(256, "mini-batch size")
    weight_decay: float = setting(1e-6, doc="AdamW weight decay", low=0)
    holdout_fraction: float = setting(0.1, doc="fraction of train held out to choose the head", low=0, high=1,
                                      low_open=True, high_open=True)


@register_probe
class LinearProbe(Probe):
    name = "linear"
    summary = ("frozen linear probe: LayerNorm/standardised/whitened linear heads x 13 lrs, chosen by "
               "cross-entropy on a held-out 10% of train")
    Options = LinearOptions
    legacy: ClassVar[dict[str, str]] = {"lrs": "linear_lrs", "epochs": "linear_epochs", "batch_size": "linear_batch_size",
              "weight_decay": "linear_weight_decay", "holdout_fraction": "holdout_fraction"}

    def run(self, context: ProbeContext) -> dict:
        o = self.options
        result = linear_probe(  # the heads train on the run's device (a GPU run's GPU)
            context.train.frozen, context.train.labels, context.test.frozen, context.test.labels,
            context.num_classes, device=context.device, lrs=o.lrs, choices=context.choices, epochs=o.epochs, batch_size=o.batch_size,
            weight_decay=o.weight_decay, holdout_fraction=o.holdout_fraction, seed=context.spec.seed,
        )
        context.handed_on[self.name] = result
        head = {"name": result.name, "norm": result.norm, "lr": result.lr, "features": result.features,
                "holdout_top1": result.holdout_top1, "holdout_cross_entropy": result.holdout_cross_entropy,
                "steps": result.steps}
        return {"top1": result.top1, "top5": result.top5, "head": head}

    @classmethod
    def metrics(cls, section: dict) -> list[Metric]:
        # The chosen head (its normalisation, lr) is a result, not the protocol: seeds that choose differently
        # were still measured by one protocol, and keep their reference.
        head = section.get("head") or {}
        protocol = LAYERNORM_ONLY if head and "norm" not in head else PROTOCOL
        return [Metric("linear_top1", f"{cls.section_path()}.top1", "linear top-1", protocol, headline=True),
                Metric("linear_top5", f"{cls.section_path()}.top5", "linear top-5", protocol, compare=False)]

    @classmethod
    def standing(cls) -> list[Metric]:
        return cls.metrics({})
