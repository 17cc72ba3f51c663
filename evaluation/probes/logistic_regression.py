"""Multinomial logistic regression on standardised frozen features (scikit-learn, L-BFGS): a reference for
the linear probe (docs/evaluation.md section 2b).

The linear probe trains its heads by mini-batch AdamW for a fixed step budget; this one minimises the same
loss (mean cross-entropy of a linear head, plus an L2 penalty 1 / (2 C n) per weight) to convergence with a
second-order solver. Where the two disagree by more than noise, the linear probe had too few steps or a bad
lr grid (benchmarks/probe_vs_logreg.py measured this once; this probe measures it in every run that lists
it). The penalty C is chosen as the linear probe chooses its head: each C of the grid is fitted on the same
fit split (evaluation.linear_probe.holdout_split, same fraction and seed), the one with the lowest held-out
cross-entropy wins (ties: the better held-out top-1), and only it is scored on test, once. Features are
standardised with the fit split's mean and standard deviation (StandardScaler), the MAE protocol's
normalisation; the grid is visited from strong to weak penalty, each fit starting from the previous one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from evaluation.linear_probe import holdout_split
from evaluation.probes.base import Metric, Probe, ProbeContext, register_probe
from lejepa.options import Validated, positive, setting

PROTOCOL = {"eval": "logistic_regression"}


@dataclass(frozen=True)
class LogisticRegressionOptions(Validated):
    OWNER = "logistic_regression"
    cs: tuple[float, ...] = positive(tuple(float(c) for c in np.logspace(-4, 4, 17)),
                                     "inverse L2 penalties C tried (half-decades 1e-4 to 1e4)")
    max_iter: int = positive(1000, "L-BFGS iterations per C at most (the record says whether it converged)")
    features: str = setting("all", doc="feature choice: all (for token models [CLS block -2 | CLS block -1]) "
                                       "or last_block (token models only)", choices=("all", "last_block"))
    holdout_fraction: float = setting(0.1, doc="fraction of train held out to choose C", low=0, high=1,
                                      low_open=True, high_open=True)


@register_probe
class LogisticRegressionProbe(Probe):
    name = "logistic_regression"
    summary = ("multinomial logistic regression (scikit-learn L-BFGS) on standardised frozen features, C chosen "
               "by held-out cross-entropy: a converged reference for the linear probe")
    Options = LogisticRegressionOptions
    legacy: ClassVar[dict[str, str]] = {"holdout_fraction": "holdout_fraction"}  # the linear probe's split

    def run(self, context: ProbeContext) -> dict:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss
        from sklearn.preprocessing import StandardScaler

        o = self.options
        if o.features not in context.choices:
            raise ValueError(f"logistic_regression: feature choice {o.features!r} does not exist for this backbone "
                             f"(it has {', '.join(context.choices)}); set eval.probe_options.logistic_regression."
                             f"features to one of them")
        columns = context.choices[o.features]
        train_x = context.train.frozen[:, columns].float().numpy()
        train_y = context.train.labels.numpy()
        fit, holdout = holdout_split(context.train.labels, o.holdout_fraction, context.spec.seed)
        scaler = StandardScaler().fit(train_x[fit])
        fit_x, holdout_x = scaler.transform(train_x[fit]), scaler.transform(train_x[holdout])
        classes = np.arange(context.num_classes)
        model = LogisticRegression(max_iter=o.max_iter, warm_start=True)
        best = None  # (held-out cross-entropy, -held-out top-1, C, iterations, fitted coefficients)
        for c in sorted(o.cs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # recorded as `converged` instead
                model.set_params(C=c).fit(fit_x, train_y[fit])
            probabilities = model.predict_proba(holdout_x)
            loss = log_loss(train_y[holdout], probabilities, labels=model.classes_)
            top1 = float((model.classes_[probabilities.argmax(1)] == train_y[holdout]).mean())
            if best is None or (loss, -top1) < best[:2]:
                best = (loss, -top1, c, int(np.max(model.n_iter_)), (model.coef_.copy(), model.intercept_.copy()))
        loss, neg_top1, c, iterations, (coef, intercept) = best
        model.coef_, model.intercept_ = coef, intercept
        test_x = scaler.transform(context.test.frozen[:, columns].float().numpy())
        probabilities = np.zeros((len(test_x), len(classes)))
        probabilities[:, model.classes_] = model.predict_proba(test_x)
        test_y = context.test.labels.numpy()
        ranked = np.argsort(-probabilities, axis=1)
        top5 = float((ranked[:, :5] == test_y[:, None]).any(1).mean()) if context.num_classes > 10 else None
        return {"top1": float((ranked[:, 0] == test_y).mean()), "top5": top5, "c": c, "features": o.features,
                "holdout_top1": -neg_top1, "holdout_cross_entropy": float(loss), "iterations": iterations,
                "converged": iterations < o.max_iter, "c_at_grid_edge": len(o.cs) > 1 and c in (min(o.cs), max(o.cs))}

    @classmethod
    def metrics(cls, section: dict) -> list[Metric]:
        protocol = {**PROTOCOL, "feature": section.get("features") or "all"}
        return [Metric("logistic_regression_top1", f"{cls.section_path()}.top1", "logreg top-1", protocol,
                       compare=False, headline=True),
                Metric("logistic_regression_top5", f"{cls.section_path()}.top5", "logreg top-5", protocol,
                       compare=False)]
