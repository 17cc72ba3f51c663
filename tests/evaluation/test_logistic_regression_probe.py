"""The logistic-regression probe (evaluation/probes/logistic_regression.py): C chosen on the linear probe's
held-out split by cross-entropy, scored on test once; a converged reference the linear probe should match."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_tiny_spec, manifest_problems, write_manifest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from evaluation.linear_probe import holdout_split
from evaluation.probes import ProbeContext, SplitFeatures, build_probes

pytestmark = pytest.mark.usefixtures("one_thread")


def _blobs(n: int, seed: int, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian classes in 6 dimensions, overlapping (a few per cent of errors), on a large offset and
    scale that standardisation must remove; `shift` moves test's class means along one axis."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    means = torch.tensor([[0.0, 0, 0, 0, 0, 0], [1.5, 1.5, 0, 0, 0, 0], [0, 1.5, 1.5, 0, 0, 0]])
    x = means[labels] + torch.randn(n, 6, generator=g)
    x[:, 0] += shift
    return 100 + 40 * x, labels


def _context(cs, train=None, test=None) -> ProbeContext:
    train_x, train_y = train or _blobs(900, seed=1)
    test_x, test_y = test or _blobs(600, seed=2)
    spec = make_tiny_spec(eval={"probes": ("linear", "logistic_regression"),
                                "probe_options": {"linear": {"lrs": [1e-2, 1e-1]},
                                                  "logistic_regression": {"cs": list(cs)}}})
    return ProbeContext(spec, 3, SplitFeatures(train_x, train_y), SplitFeatures(test_x, test_y),
                        {"all": slice(None)}, "pooled", torch.device("cpu"))


def _by_hand(context: ProbeContext, c: float) -> tuple[float, float, float]:
    """(held-out cross-entropy, held-out top-1, test top-1) of C, fitted from scratch on the fit split."""
    x, y = context.train.frozen.numpy(), context.train.labels.numpy()
    fit, holdout = holdout_split(context.train.labels, 0.1, context.spec.seed)
    mean, std = x[fit].mean(0), x[fit].std(0)
    model = LogisticRegression(C=c, max_iter=5000, tol=1e-8).fit((x[fit] - mean) / std, y[fit])
    holdout_x = (x[holdout] - mean) / std
    test_x = (context.test.frozen.numpy() - mean) / std
    return (log_loss(y[holdout], model.predict_proba(holdout_x)), model.score(holdout_x, y[holdout]),
            model.score(test_x, context.test.labels.numpy()))


def test_c_is_the_one_with_the_lowest_held_out_cross_entropy_and_only_it_is_scored_on_test():
    cs = (1e-4, 1e-2, 1.0)
    context = _context(cs)
    linear, logreg = build_probes(context.spec)
    assert logreg.name == "logistic_regression" and logreg.options.holdout_fraction == 0.1  # linear's split
    section = logreg.run(context)
    hand = {c: _by_hand(context, c) for c in cs}
    best = min(cs, key=lambda c: hand[c][0])
    assert best != 1e-4  # the strongest penalty underfits: the grid must not just return its first C
    assert section["c"] == best and section["converged"] and section["features"] == "all"
    assert section["c_at_grid_edge"] == (best in (min(cs), max(cs)))
    assert section["holdout_cross_entropy"] == pytest.approx(hand[best][0], rel=1e-3)
    assert section["holdout_top1"] == pytest.approx(hand[best][1], abs=1 / 90)
    assert section["top1"] == pytest.approx(hand[best][2], abs=1 / 600)
    assert section["top5"] is None  # 3 classes
    # The reference it exists for: on these features the linear probe's chosen head agrees with it.
    assert linear.run(context)["top1"] == pytest.approx(section["top1"], abs=0.02)


def test_a_shift_on_test_is_not_chosen_around():
    """Test's class means move; C is still the held-out choice, so test top-1 is what that C gives."""
    cs = (1e-3, 1.0)
    context = _context(cs, test=_blobs(600, seed=2, shift=3.0))
    section = build_probes(context.spec)[1].run(context)
    hand = {c: _by_hand(context, c) for c in cs}
    assert section["c"] == min(cs, key=lambda c: hand[c][0])
    assert section["top1"] == pytest.approx(hand[section["c"]][2], abs=1 / 600)


def test_its_options_are_checked_when_the_manifest_loads(tmp_path):
    path = write_manifest(tmp_path, """\
        name: logreg
        defaults:
          data: {name: digits}
          eval: {probes: [linear, logistic_regression], probe_options: {logistic_regression: {cs: [0], featurs: all}}}
        """)
    message = manifest_problems(path)
    assert "eval.probe_options.logistic_regression.cs: must be > 0" in message
    assert "probe 'logistic_regression' has no option 'featurs'; did you mean features?" in message


def test_it_is_listed_and_reported_from_the_registry(capsys):
    from evaluation import tables
    from experiments.cli import main

    assert main(["list", "probes"]) == 0
    assert "logistic_regression" in [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert main(["describe", "probe", "logistic_regression"]) == 0
    assert "logistic_regression_top1: logreg top-1 (headline); protocol logistic_regression, feature all" in (
        capsys.readouterr().out)
    record = {"run_id": "r", "status": "done", "spec": make_tiny_spec().to_dict(), "pretrain": {},
              "evaluation": {"probes": {"logistic_regression": {"top1": 0.875, "top5": None, "features": "all"}}}}
    summary, _ = tables.summarise([record])
    assert summary.iloc[0]["logistic_regression_top1_mean"] == pytest.approx(87.5)
    assert summary.attrs["protocols"]["logistic_regression_top1"] == "logistic_regression, feature all"
    assert np.isnan(summary.iloc[0]["paper_logistic_regression_top1"])  # no reference number: compare=False
