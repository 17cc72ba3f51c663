"""Run health (evaluation/health.py) from synthetic records: each check's value and verdict, the cross-run
probe gap to random init, and what tables, figures and report.md do with a run that did not learn."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_record

from evaluation import figures, health, report, tables
from evaluation.record import read_record, write_record
from lejepa.spec import RunSpec

DINO = {"name": "dino", "out_dim": 1024}
LN_1024 = math.log(1024)


def _logged(*losses: float) -> list[dict]:
    return [{"step": 10 * (i + 1), "loss": loss} for i, loss in enumerate(losses)]


def _healthy(**changes) -> dict:
    """A record whose job checks all pass (loss far under ln K, fell, rank 8)."""
    record = synthetic_record(**changes)
    record["health"] = {"verdict": "ok", "checks": {
        "effective_rank": health.make_check(8.0, health.MIN_EFFECTIVE_RANK, ">=", False)}}
    return record


def _with_spec_health(record: dict, final: float, logged: list[dict], spectrum, **parts: float) -> dict:
    spec = RunSpec.from_dict(record["spec"])
    record["pretrain"]["final_loss"] = final
    record["pretrain"]["final_parts"].update(parts)
    record["health"] = health.run_health(spec, record["pretrain"], {"embedding_spectrum": list(spectrum)}, logged)
    return record


def test_effective_rank_by_hand():
    assert health.effective_rank(np.ones(16)) == pytest.approx(16)
    assert health.effective_rank([5.0, 0, 0, 0]) == pytest.approx(1)
    assert health.effective_rank(np.zeros(4)) == 1.0  # no variance: one point
    # Two equal eigenvalues and two zeros: entropy ln 2, effective rank 2.
    assert health.effective_rank([1.0, 1.0, 0.0, 0.0]) == pytest.approx(2)
    assert figures.effective_rank is health.effective_rank  # the spectrum figure uses the same one


def test_dino_stuck_at_ln_k_did_not_learn_and_says_why():
    record = synthetic_record(method=DINO)
    spec = RunSpec.from_dict(record["spec"])
    result = health.run_health(spec, {"final_loss": LN_1024}, {"embedding_spectrum": [1.0] * 8},
                               _logged(LN_1024, 6.93, LN_1024))
    checks = result["checks"]
    assert result["verdict"] == health.DID_NOT_LEARN
    below = checks["loss_below_trivial"]
    assert below["trivial"] == pytest.approx(LN_1024)
    assert below["threshold"] == pytest.approx(0.9 * LN_1024) and below["passed"] is False
    assert checks["loss_fell"]["value"] == pytest.approx(0.0) and checks["loss_fell"]["passed"] is False
    assert checks["loss_fell"]["start_loss"] == pytest.approx(LN_1024)  # 3 lines: windows of one line each
    assert checks["effective_rank"]["value"] == pytest.approx(8) and checks["effective_rank"]["passed"]
    assert not any(check["uses_labels"] for check in checks.values())
    text = health.failed_checks(result)
    assert "loss_below_trivial 6.931 > 6.238" in text and "ln K = ln 1024" in text and "loss_fell 0 < 0.02" in text


def test_loss_fall_compares_the_first_and_last_fifth_of_the_log():
    fall = health.loss_fall(_logged(10, 8, 7, 6, 5, 4, 4, 3, 2, 2))  # 10 lines: windows of two
    assert (fall["start_loss"], fall["end_loss"]) == (9, 2) and fall["value"] == pytest.approx(7 / 9)
    assert (fall["start_steps"], fall["end_steps"]) == ([10, 20], [90, 100])
    assert health.loss_fall(_logged(1.0)) is None  # one line: nothing to compare


def test_learning_runs_of_each_method_pass():
    cases = [(DINO, 4.0, 7.0, {}, "loss", LN_1024),
             ({"name": "vicreg", "expander_hidden": 64, "expander_dim": 64}, 12.0, 20.0, {"var": 0.05}, "var", 0.99),
             ({"name": "lejepa", "lamb": 0.05}, 0.3, 2.0, {"sigreg": 1.5}, "sigreg", health.collapsed_sigreg(128))]
    for method, final, first, parts, term, trivial in cases:
        record = _with_spec_health(synthetic_record(method=method), final, _logged(first, final), np.ones(6), **parts)
        assert record["health"]["verdict"] == health.OK, (method, record["health"])
        assert set(record["health"]["checks"]) == {"loss_below_trivial", "loss_fell", "effective_rank"}
        below = record["health"]["checks"]["loss_below_trivial"]
        assert (below["term"], below["trivial"]) == (term, pytest.approx(trivial))  # batch 128 for LeJEPA's N


def test_collapse_is_judged_on_the_term_collapse_pins_not_on_the_weighted_total():
    # LeJEPA at lambda 0.01: a collapsed embedding's total is 0.01 x SIGReg(128 equal points) = 0.51, below
    # this healthy run's total of 0.6 (its prediction error), but its SIGReg of 2 is far from the collapsed 51.
    record = _with_spec_health(synthetic_record(method={"name": "lejepa", "lamb": 0.01}), 0.6, _logged(2.0, 0.6),
                               np.ones(6), sigreg=2.0)
    assert record["health"]["checks"]["loss_below_trivial"]["value"] == 2.0 and record["health"]["verdict"] == "ok"
    # VICReg whose variance hinge sits at its collapsed 0.99 did not learn, whatever its other terms.
    record = _with_spec_health(synthetic_record(method={"name": "vicreg"}), 24.9, _logged(30.0, 24.9), np.ones(6),
                               var=0.99)
    assert record["health"]["checks"]["loss_below_trivial"]["passed"] is False
    assert "loss_below_trivial (var) 0.99 > 0.891" in health.failed_checks(record["health"])


def test_collapsed_features_fail_the_rank_check():
    record = _with_spec_health(synthetic_record(), 0.3, _logged(2.0, 0.3), [10.0, 1e-3, 1e-4, 0])
    assert record["health"]["checks"]["effective_rank"]["value"] < 1.1
    assert record["health"]["verdict"] == health.DID_NOT_LEARN


def test_reference_rows_and_runs_without_pretraining():
    spec = RunSpec.from_dict(synthetic_record(method={"name": "random_init"})["spec"])
    assert health.run_health(spec, {}, {"embedding_spectrum": [1.0]}, [], pretrains=False) == {
        "verdict": "reference", "checks": {}}
    # A transfer run: no pretraining of its own, so only the features are checked.
    transfer = health.run_health(RunSpec.from_dict(synthetic_record()["spec"]), {}, {"embedding_spectrum": [1, 1]}, [])
    assert list(transfer["checks"]) == ["effective_rank"] and transfer["verdict"] == "ok"


def test_probe_gap_to_random_init_uses_labels_and_only_the_same_backbone():
    records = [_healthy(seed=0, linear=0.60), _healthy(seed=1, linear=0.80), _healthy(seed=2, linear=0.615),
               synthetic_record(method={"name": "random_init"}, seed=0, linear=0.59),
               synthetic_record(method={"name": "random_init"}, seed=1, linear=0.61),
               synthetic_record(method={"name": "random_init"}, arch="resnet34", linear=0.10),
               _healthy(arch="resnet50", linear=0.20)]
    result = health.study_health(records)
    gap = result[records[0]["run_id"]]["checks"]["probe_gap_to_random_init"]
    assert gap["random_init_top1"] == pytest.approx(60.0) and gap["random_init_runs"] == 2
    assert gap["value"] == pytest.approx(0.0, abs=1e-9) and gap["passed"] is False and gap["uses_labels"] is True
    assert result[records[0]["run_id"]]["verdict"] == health.DID_NOT_LEARN
    assert result[records[1]["run_id"]]["verdict"] == health.OK  # +20 points
    assert result[records[2]["run_id"]]["checks"]["probe_gap_to_random_init"]["value"] == pytest.approx(1.5)
    assert result[records[2]["run_id"]]["verdict"] == health.DID_NOT_LEARN  # under the 2-point margin
    assert result[records[3]["run_id"]]["verdict"] == health.REFERENCE
    assert "probe_gap_to_random_init" not in result[records[6]["run_id"]]["checks"]  # no resnet50 reference


def test_reports_judge_recorded_values_against_the_current_thresholds():
    # Recorded by a job whose loss_fell threshold was 5%: a 4.3% fall failed then; the current 2% passes it.
    record = _healthy(method={"name": "vicreg"}, linear=0.9)
    record["health"] = {"verdict": "did not learn", "checks": {
        "loss_fell": {"value": 0.043, "threshold": 0.05, "passed": False, "passes_if": ">=", "uses_labels": False,
                      "start_loss": 21.4, "end_loss": 20.5},
        "loss_below_trivial": {"value": 0.95, "threshold": 0.5, "passed": False, "passes_if": "<=",
                               "uses_labels": False, "term": "var", "trivial": 0.99}}}
    judged = health.study_health([record])[record["run_id"]]
    assert judged["checks"]["loss_fell"] == {**record["health"]["checks"]["loss_fell"], "threshold": 0.02,
                                             "passed": True}
    below = judged["checks"]["loss_below_trivial"]
    assert below["threshold"] == pytest.approx(0.891) and below["passed"] is False and below["term"] == "var"
    assert judged["verdict"] == health.DID_NOT_LEARN  # the variance term is still at collapse
    record["health"]["checks"]["loss_below_trivial"]["value"] = 0.7
    assert health.study_health([record])[record["run_id"]]["verdict"] == health.OK


def test_old_records_without_health_are_not_checked_and_still_read(tmp_path: Path):
    record = synthetic_record()
    del record["health"]
    write_record(tmp_path, record)
    loaded = read_record(tmp_path / record["experiment"] / record["run_id"] / "result.json")
    assert "health" not in loaded
    assert health.study_health([loaded])[loaded["run_id"]]["verdict"] == health.NOT_CHECKED
    assert tables.summarise([loaded])[0].iloc[0]["health"] == "not checked"


def _study() -> list[dict]:
    """Three LeJEPA seeds, one of which did not learn (loss stuck), beside three healthy VICReg seeds."""
    records = [_healthy(seed=s, linear=acc, loss=loss) for s, acc, loss in [(0, 0.70, 0.3), (1, 0.72, 0.2)]]
    stuck = synthetic_record(seed=2, linear=0.40, loss=1.9)
    records.append(_with_spec_health(stuck, 1.9, _logged(1.9, 1.9), np.ones(4)))
    records += [_healthy(method={"name": "vicreg"}, seed=s, linear=0.5 + s / 100, loss=10.0 + s) for s in range(3)]
    return records


def test_tables_leave_runs_that_did_not_learn_out_of_means_unless_asked(tmp_path: Path):
    records = _study()
    summary, _ = tables.summarise(records)
    lejepa = summary[summary["method"] == "lejepa"].iloc[0]
    assert lejepa["n"] == 2 and lejepa["done"] == 3 and lejepa["did_not_learn"] == 1
    assert lejepa["linear_top1_mean"] == pytest.approx(71.0)
    assert lejepa["health"] == "did not learn: 1 of 3 (not in the mean)"
    assert summary[summary["method"] == "vicreg"].iloc[0]["health"] == "ok"
    included = tables.summarise(records, include_unhealthy=True)[0]
    row = included[included["method"] == "lejepa"].iloc[0]
    assert row["n"] == 3 and row["linear_top1_mean"] == pytest.approx((70 + 72 + 40) / 3)
    assert row["health"] == "did not learn: 1 of 3 (in the mean)"
    console = tables.format_console_table(records)
    assert "health" in console.splitlines()[0]
    assert "did not learn: 1 of 3 (not in the mean)" in console and "71.00 ± 1.41" in console
    paths = tables.write_tables("study", records, tmp_path)
    markdown = paths[1].read_text()
    assert "| health |" in markdown and "did not learn: 1 of 3 (not in the mean)" in markdown
    assert "left out of the means" in markdown
    assert "did not learn: 1 of 3" in paths[2].read_text()  # LaTeX
    assert "did_not_learn" in paths[0].read_text().splitlines()[0]  # CSV


def test_a_method_that_never_learns_is_shown_without_a_mean():
    records = [_with_spec_health(synthetic_record(method=DINO, seed=s, linear=0.6, loss=LN_1024), LN_1024,
                                 _logged(LN_1024, LN_1024), np.ones(4)) for s in range(3)]
    row = tables.summarise(records)[0].iloc[0]
    assert row["n"] == 0 and math.isnan(row["linear_top1_mean"])
    assert row["health"] == "did not learn: 3 of 3 (not in the mean)"


def test_loss_vs_accuracy_fits_only_runs_that_learnt_and_marks_the_others():
    records = _study()[:3] + [_healthy(seed=s, linear=0.6 + s / 100, loss=1.0 - s / 10) for s in range(3, 6)]
    lejepa = [r for r in records if r["spec"]["method"]["name"] == "lejepa"]
    fig = figures.loss_vs_accuracy(lejepa)
    title = fig.axes[0].get_title()
    assert "(n = 5; 1 run(s) that did not learn marked ×, not in ρ)" in title
    crosses = [c for c in fig.axes[0].collections if c.get_label().startswith("did not learn")]
    assert len(crosses) == 1 and crosses[0].get_offsets().tolist() == [[1.9, 40.0]]
    assert "(n = 6; 1 run(s)" in figures.loss_vs_accuracy(lejepa, include_unhealthy=True).axes[0].get_title()


def test_other_figures_drop_runs_that_did_not_learn_and_say_so():
    records = _study()
    for record in records:
        record["evaluation"]["embedding_spectrum"] = [1.0, 0.5, 0.25]
    fig = figures.embedding_spectrum(records)
    assert "1 run(s) that did not learn left out" in figures.figure_caption(fig)
    kept = figures.embedding_spectrum(records, include_unhealthy=True)
    assert "1 run(s) that did not learn included" in figures.figure_caption(kept)


def test_report_md_lists_each_run_that_did_not_learn(tmp_path: Path):
    records = _study()
    report.write_report("study", records, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "## Health" in text and "6 done runs: 1 did not learn, 5 ok." in text
    assert f"- {records[2]['run_id']}: did not learn: loss_fell 0 < 0.02" in text
