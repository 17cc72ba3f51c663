"""Label-free model selection (paper Eq. 8) and the accuracy accessor it reads probes through.

The four runs of `eq8_runs` are built so that the scaled loss at alpha = 0.5 orders them exactly as their
accuracy, while the raw loss does not: lambda = 0.01, 0.04, 0.16, 0.64 (square roots 0.1, 0.2, 0.4, 0.8),
scaled losses s = 4, 3, 2.5, 1, raw losses s * sqrt(lambda) = 0.4, 0.6, 1.0, 0.8, accuracies 0.6 ... 0.9.
By hand: raw ranks of -loss [4, 3, 1, 2] against accuracy ranks [1, 2, 3, 4] give d^2 = 9 + 1 + 4 + 4 = 18
and rho = 1 - 6 * 18 / (4 * 15) = -0.8; at alpha = 0.5 (and 0.4: s * lambda^0.1 keeps s's order) rho = 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import synthetic_record

from evaluation import accuracies, selection
from evaluation.report import write_report

LAMBDAS = (0.01, 0.04, 0.16, 0.64)
SCALED = (4.0, 3.0, 2.5, 1.0)
ACCURACY = (0.6, 0.7, 0.8, 0.9)


def eq8_runs(dataset: str = "fashion_mnist", probe: str = "linear") -> list[dict]:
    """The four runs; probe "knn": the accuracies as kNN numbers and no linear probe."""
    return [synthetic_record(dataset, method={"name": "lejepa", "lamb": lamb}, loss=s * math.sqrt(lamb),
                             **({"linear": acc} if probe == "linear" else {"linear": None, "knn": acc}))
            for lamb, s, acc in zip(LAMBDAS, SCALED, ACCURACY)]


def test_scaled_loss_is_the_loss_over_lambda_to_the_alpha_and_plain_without_lambda():
    run = synthetic_record(method={"name": "lejepa", "lamb": 0.04}, loss=0.6)
    assert selection.scaled_loss(run, 0.5) == pytest.approx(0.6 / 0.2)
    assert selection.scaled_loss(run, 0.0) == pytest.approx(0.6)
    assert selection.PAPER_ALPHA == 0.4
    vicreg = synthetic_record(method={"name": "vicreg"}, loss=3.0)
    assert selection.lambda_of(vicreg) is None and selection.scaled_loss(vicreg, 0.4) == 3.0
    assert selection.scaled_loss(synthetic_record(status="failed"), 0.4) is None


def test_rho_by_hand_raw_and_scaled():
    runs = eq8_runs()
    assert selection.loss_accuracy_rho(runs, 0.0, "linear") == (pytest.approx(-0.8), 4)
    assert selection.loss_accuracy_rho(runs, 0.5, "linear") == (pytest.approx(1.0), 4)
    assert selection.loss_accuracy_rho(runs, 0.4, "linear")[0] == pytest.approx(1.0)
    alphas = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    # alpha 0.25: losses s * lambda^0.25 = 1.265, 1.342, 1.581, 0.894, ranks [3, 2, 1, 4]: rho = 1 - 48/60
    curve = selection.rho_curve(runs, alphas, "linear")
    assert curve == pytest.approx([-0.8, 0.2, 1.0, 1.0, 1.0])
    assert selection.best_alpha(alphas, curve) == (0.5, pytest.approx(1.0))  # the smallest alpha of the best


def test_rho_is_undefined_below_three_runs_or_for_constant_accuracy():
    runs = eq8_runs()
    assert math.isnan(selection.loss_accuracy_rho(runs[:2], 0.4, "linear")[0])
    flat = [synthetic_record(method={"name": "lejepa", "lamb": lamb}, loss=lamb, linear=0.5) for lamb in LAMBDAS]
    assert math.isnan(selection.loss_accuracy_rho(flat, 0.4, "linear")[0])
    assert all(math.isnan(v) for v in selection.best_alpha(np.array([0.0, 1.0]), np.array([np.nan, np.nan])))


def test_selection_picks_the_lowest_scaled_loss_and_compares_it_with_the_best_run():
    runs = eq8_runs()
    (picked,) = selection.select_runs(runs)
    assert picked.alpha == 0.4 and picked.probe == "linear"
    assert picked.picked["run_id"] == runs[3]["run_id"] and picked.picked["accuracy"] == pytest.approx(0.9)
    assert picked.best["run_id"] == runs[3]["run_id"]
    assert picked.rho == pytest.approx(1.0) and picked.rho_raw == pytest.approx(-0.8)
    assert [r["run_id"] for r in picked.ranking] == [r["run_id"] for r in reversed(runs)]
    assert picked.picked["settings"] == {"method.lamb": 0.64}
    text = "\n".join(selection.selection_lines([picked]))
    assert f"picks {runs[3]['run_id']} (method.lamb = 0.64)" in text
    assert "picked 90.00 % vs best 90.00 %" in text and "number 1 of 4 by accuracy" in text
    assert "rho = +1.000 at alpha 0.4, -0.800 on the raw loss (n = 4)" in text
    assert "Eq. (8)" in text


def test_runs_that_differ_only_in_seed_are_named_once():
    runs = [synthetic_record(seed=seed, loss=loss, linear=acc) for seed, loss, acc in ((0, 1.0, 0.7), (1, 0.8, 0.8),
                                                                                       (2, 0.9, 0.9))]
    (found,) = selection.select_runs(runs)
    assert found.picked["settings"] == {} and found.picked["run_id"] == runs[1]["run_id"]
    text = "\n".join(selection.selection_lines([found]))
    assert f"picks {runs[1]['run_id']}, scaled loss" in text  # no "(run id)" after the run id
    assert f"vs best 90.00 % ({runs[2]['run_id']}); the pick is number 2 of 3" in text


def test_on_the_raw_loss_the_pick_is_the_worst_run_and_says_so():
    runs = eq8_runs()
    (raw,) = selection.select_runs(runs, alpha=0.0)
    assert raw.picked["run_id"] == runs[0]["run_id"]  # raw loss 0.4, the lowest
    text = "\n".join(selection.selection_lines([raw]))
    assert "picked 60.00 % vs best 90.00 %" in text and "number 4 of 4 by accuracy" in text


def test_groups_keep_datasets_apart_and_leave_out_unfinished_and_small_groups():
    runs = eq8_runs() + eq8_runs("digits") + [synthetic_record("cifar10"), synthetic_record(status="failed")]
    found = selection.select_runs(runs)
    assert [s.group[1] for s in found] == ["digits", "fashion_mnist"]  # cifar10 has one run: no ranking
    assert all(len(s.ranking) == 4 for s in found)
    assert selection.selection_lines([])[0].startswith("No group of at least 3 finished runs")


def test_without_probe_numbers_the_ranking_stands_alone_and_knn_serves_when_linear_is_missing():
    bare = [synthetic_record(method={"name": "lejepa", "lamb": lamb}, loss=lamb, linear=None, knn=None)
            for lamb in LAMBDAS]
    (alone,) = selection.select_runs(bare)
    assert alone.probe is None and alone.rho is None
    assert "no probe numbers to check it against" in selection.selection_lines([alone])[1]
    (by_knn,) = selection.select_runs(eq8_runs(probe="knn"))
    assert by_knn.probe == "knn" and by_knn.rho == pytest.approx(1.0) and by_knn.rho_raw == pytest.approx(-0.8)
    assert "kNN@20 top-1: picked 90.00 %" in selection.selection_lines([by_knn])[1]


def test_report_md_and_console_carry_the_selection(tmp_path):
    runs = eq8_runs()
    write_report("eq8", runs, tmp_path)
    text = (tmp_path / "report.md").read_text()
    section = text.split("## Label-free model selection (paper Eq. 8)")[1]
    assert f"picks {runs[3]['run_id']}" in section and "rho = +1.000 at alpha 0.4" in section


# ---------------------------------------------------------------- the accessor

def test_accuracies_are_read_from_the_records_current_keys():
    run = synthetic_record(linear=0.81, knn=0.7, evaluation={
        "few_shot": {"10": {"mean": 0.5, "std": 0.02, "draws": 3}, "1": {"mean": 0.2, "std": None, "draws": 3}}})
    assert accuracies.probe_accuracy(run, "linear") == pytest.approx(0.81)
    assert accuracies.probe_accuracy(run, "knn") == pytest.approx(0.7)
    assert accuracies.few_shot_accuracies(run) == {1: (0.2, 0.0), 10: (0.5, 0.02)}
    assert accuracies.probe_accuracy(synthetic_record(linear=float("nan")), "linear") is None
    assert accuracies.probe_of([synthetic_record(linear=None)]) == "knn"
    with pytest.raises(ValueError, match="unknown probe 'svm'"):
        accuracies.probe_accuracy(run, "svm")


def test_an_accuracy_logged_in_metrics_lines_is_found_by_its_name():
    assert accuracies.metrics_accuracy({"step": 5, "loss": 1.0, "online_linear_top1": 0.4}) == \
        ("online_linear_top1", 0.4)
    assert accuracies.metrics_accuracy({"step": 5, "loss": 1.0, "lr": 0.1, "images_per_second": 3.0}) is None
    assert accuracies.metrics_accuracy({"step": 5, "probe_acc": float("nan")}) is None
