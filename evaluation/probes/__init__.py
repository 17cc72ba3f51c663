"""The probe registry (evaluation/probes/base.py): each probe is one module here, imported below."""

from evaluation.probes import few_shot, knn, linear, online_linear  # noqa: F401  registers the probes
from evaluation.probes import logistic_regression  # noqa: F401  (after them: `lejepa list probes` order)
from evaluation.probes.base import (
    PROBES,
    Metric,
    Probe,
    ProbeContext,
    SplitFeatures,
    build_probes,
    get_probe,
    probe_options,
    probe_problems,
    protocol_text,
    record_metrics,
    register_probe,
)

__all__ = ["PROBES", "Metric", "Probe", "ProbeContext", "SplitFeatures", "build_probes", "get_probe",
           "probe_options", "probe_problems", "protocol_text", "record_metrics", "register_probe"]
