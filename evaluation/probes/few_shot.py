"""Few-shot linear probes (docs/evaluation.md section 5; paper Tables 2 and 3): `shots` labelled images per
class, drawn `draws` times; each head uses what the full-data linear probe chose on its held-out split (lr,
feature choice and, where it names one, normalisation) and trains for its number of steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from evaluation.linear_probe import few_shot_probe
from evaluation.probes.base import Metric, Probe, ProbeContext, get_probe, probe_options, register_probe
from evaluation.probes.linear import PROTOCOL
from lejepa.options import Validated, positive


@dataclass(frozen=True)
class FewShotOptions(Validated):
    OWNER = "few_shot"
    shots: tuple[int, ...] = positive((), "labelled images per class, e.g. [1, 10]")
    draws: int = positive(3, "independent draws per shots setting")

    def cross_checks(self) -> list[tuple[str, str]]:
        return [] if self.shots else [("shots", "give at least one, e.g. [1, 10] (or eval.few_shot: [1, 10])")]


@register_probe
class FewShotProbe(Probe):
    name = "few_shot"
    summary = "few-shot linear probes with the full-data probe's chosen head settings (paper Tables 2-3)"
    Options = FewShotOptions
    legacy: ClassVar[dict[str, str]] = {"shots": "few_shot", "draws": "few_shot_draws"}
    requires = ("linear",)

    def run(self, context: ProbeContext) -> dict:
        chosen = context.handed_on["linear"]
        linear_options = probe_options(get_probe("linear"), context.spec.eval)  # its batch size, weight decay
        train, test = context.train, context.test
        return {str(shots): few_shot_probe(
            train.frozen, train.labels, test.frozen, test.labels, context.num_classes, shots, self.options.draws,
            lr=chosen.lr, features=context.choices[chosen.features], steps=chosen.steps,
            batch_size=linear_options.batch_size, weight_decay=linear_options.weight_decay, seed=context.spec.seed,
            norm=chosen.norm,
        ) for shots in self.options.shots}

    @classmethod
    def metrics(cls, section: dict) -> list[Metric]:
        shots = sorted(int(s) for s in section if s.isdigit() and isinstance(section[s], dict))
        return [Metric(f"few_shot_{s}", f"{cls.section_path()}.{s}.mean", f"{s}-shot top-1",
                       {**PROTOCOL, "shots": s}, headline=i == 0) for i, s in enumerate(shots)]
