"""kNN on frozen features, the standard protocols (docs/evaluation.md section 4): DINO's weighted vote on
L2-normalised features (Caron et al. 2021, eval_knn.py; k = 20, T = 0.07) and lightly's benchmark k = 200,
from one search. The feature is a named choice, and the record names it with k and T:

- `last_cls`: the final block's CLS token after the final norm, as DINO;
- `two_block`: the CLS tokens of the last two blocks concatenated, the paper's linear-probe feature (what
  this suite's kNN read before the registry, hence the default: old runs keep their numbers).

CNNs and hierarchical models have one feature, the pooled final map: both choices read it and the record
says `pooled` (raw-pixel reference rows: `pixels`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from evaluation.knn import knn_accuracy
from evaluation.probes.base import Metric, Probe, ProbeContext, register_probe
from lejepa.options import Validated, positive, setting

FEATURES = ("two_block", "last_cls")
HEADLINE_K = 20  # DINO's headline (its Section 3.2)
COMPARABLE = ("last_cls", "pooled")  # the features the public kNN numbers (DINO, lightly) are measured on


@dataclass(frozen=True)
class KNNOptions(Validated):
    OWNER = "knn"
    k: tuple[int, ...] = positive((10, 20, 100, 200), "neighbour counts reported (20: DINO; 200: lightly)")
    temperature: float = positive(0.07, "temperature T of the vote weights exp(similarity / T)")
    feature: str = setting("two_block", doc="token models: last_cls (DINO) or two_block (the linear probe's); "
                                            "CNNs read their pooled feature either way", choices=FEATURES)


@register_probe
class KNNProbe(Probe):
    name = "knn"
    summary = "weighted kNN on L2-normalised frozen features, every k from one search (DINO's eval_knn.py)"
    Options = KNNOptions
    legacy: ClassVar[dict[str, str]] = {"k": "knn_k", "temperature": "knn_temperature"}

    def run(self, context: ProbeContext) -> dict:
        o = self.options
        columns, feature = context.choices["all"], context.kind
        if context.kind == "tokens":
            feature = o.feature
            columns = context.choices["last_block"] if o.feature == "last_cls" else context.choices["all"]
        accuracies = knn_accuracy(context.train.frozen[:, columns], context.train.labels,
                                  context.test.frozen[:, columns], context.test.labels, context.num_classes,
                                  o.k, o.temperature, device=context.device)
        return {"feature": feature, "k": list(o.k), "temperature": o.temperature,
                **{f"top1@{k}": accuracy for k, accuracy in accuracies.items()}}

    @classmethod
    def metrics(cls, section: dict) -> list[Metric]:
        ks = sorted(int(m.group(1)) for key in section if (m := re.fullmatch(r"top1@(\d+)", key)))
        headline = HEADLINE_K if HEADLINE_K in ks else (ks[0] if ks else None)
        feature, temperature = section.get("feature"), section.get("temperature")
        return [cls._metric(k, temperature, feature, headline=k == headline) for k in ks]

    @classmethod
    def _metric(cls, k: int, temperature, feature, headline: bool = False) -> Metric:
        protocol = {"eval": "knn", "k": k, "temperature": temperature, "feature": feature}
        return Metric(f"knn_top1@{k}", f"{cls.section_path()}.top1@{k}", f"kNN@{k} top-1", protocol,
                      compare=feature in COMPARABLE, headline=headline)

    @classmethod
    def standing(cls) -> list[Metric]:
        return [cls._metric(HEADLINE_K, None, None, headline=True)]
