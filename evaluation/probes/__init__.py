"""The probe registry (evaluation/probes/base.py): each probe is one module here, imported below."""

from evaluation.probes import (  # noqa: F401  registers the probes
    few_shot,
    knn,
    linear,
    logistic_regression,
    online_linear,
)
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
