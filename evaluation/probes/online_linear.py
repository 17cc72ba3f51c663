"""The online linear probe's test number (paper Section 6.4, protocol "online_linear"; docs/evaluation.md
section 3). The head trained during pretraining on detached `Backbone.forward` outputs of the global views
(lejepa/online_probe.py); here it is applied once to the test split's un-augmented centre crops through the
same readout of the same (trained, not averaged) backbone."""

from __future__ import annotations

from evaluation.linear_probe import topk_accuracy
from evaluation.probes.base import Metric, Probe, ProbeContext, register_probe
from lejepa.online_probe import ONLINE_PROBE, OnlineLinearOptions

PROTOCOL = {"eval": "online_linear"}


@register_probe
class OnlineLinearProbe(Probe):
    name = ONLINE_PROBE
    summary = ("online linear probe: LayerNorm + linear trained during pretraining on detached global-view "
               "embeddings (paper Section 6.4, MINIMAL.md)")
    Options = OnlineLinearOptions

    def run(self, context: ProbeContext) -> dict:
        probe = context.online_probe
        if probe is None:  # a reference row or a transfer run: nothing was pretrained here
            return {"skipped": f"no online head: method {context.spec.method_name} did not pretrain in this run"}
        logits = probe.logits(context.test.pooled)
        labels = context.test.labels.to(logits.device)
        top5 = topk_accuracy(logits, labels, 5) if context.num_classes > 10 else None
        return {"top1": topk_accuracy(logits, labels, 1), "top5": top5, "feature": "pooled", "views": "global"}

    @classmethod
    def metrics(cls, section: dict) -> list[Metric]:
        if "skipped" in section:
            return []
        return [Metric("online_linear_top1", f"{cls.section_path()}.top1", "online linear top-1", PROTOCOL,
                       headline=True),
                Metric("online_linear_top5", f"{cls.section_path()}.top5", "online linear top-5", PROTOCOL,
                       compare=False)]
