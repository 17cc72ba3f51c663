"""Records of schema 1 (probe numbers at the top of `evaluation`, before the probe registry) still load, in
the current layout, and report as they did: tables, the accuracy accessor and `lejepa status`."""

from __future__ import annotations

import json

import pytest
from conftest import TINY

from evaluation import tables
from evaluation.accuracies import few_shot_accuracies, probe_accuracy
from evaluation.record import RECORD_SCHEMA, read_record, record_path, upgrade_evaluation
from evaluation.rows import describe

SCHEMA_1_EVALUATION = {
    "linear_top1": 0.81, "linear_top5": None, "linear_head": {"lr": 0.01, "features": "all", "holdout_top1": 0.8},
    "knn_top1@10": 0.7, "knn_top1@20": 0.72, "few_shot": {"1": {"mean": 0.3, "std": 0.01, "draws": [0.29, 0.31]}},
    "feature_dim": 64, "train_images": 1437, "test_images": 360, "embedding_spectrum": [1.0, 0.5], "wall_seconds": 9.0,
}


def _schema_1_record(tmp_path):
    """A result.json as the code before the registry wrote it."""
    record = {"schema": 1, "run_id": TINY.run_id, "experiment": TINY.experiment, "created": "2026-12-01T00:00:00+00:00",
              "status": "done", "reason": None, "spec": TINY.to_dict(),
              "pretrain": {"status": "done", "steps": 6, "epochs": 0.1, "wall_seconds": 3.0, "images_per_second": 60.0,
                           "final_loss": 0.5, "final_parts": {}, "reason": None},
              "evaluation": SCHEMA_1_EVALUATION, "environment": {"device": "cpu", "world_size": 1}}
    path = record_path(tmp_path, TINY.experiment, TINY.run_id)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    return path


def test_a_schema_1_record_loads_in_the_current_layout(tmp_path):
    path = _schema_1_record(tmp_path)
    record = read_record(path, expect_run_id=TINY.run_id)
    assert record["schema"] == RECORD_SCHEMA == 2
    assert record["evaluation"]["probes"] == {
        "linear": {"top1": 0.81, "top5": None, "head": {"lr": 0.01, "features": "all", "holdout_top1": 0.8}},
        "few_shot": {"1": {"mean": 0.3, "std": 0.01, "draws": [0.29, 0.31]}},
        "knn": {"feature": "two_block", "k": [10, 20], "temperature": 0.07, "top1@10": 0.7, "top1@20": 0.72}}
    assert {k: v for k, v in record["evaluation"].items() if k != "probes"} == {
        k: v for k, v in SCHEMA_1_EVALUATION.items() if k in ("feature_dim", "train_images", "test_images",
                                                              "embedding_spectrum", "wall_seconds")}
    assert json.loads(path.read_text())["schema"] == 1  # upgraded in memory only
    assert upgrade_evaluation(record["evaluation"], record["spec"]) == record["evaluation"]  # idempotent
    assert upgrade_evaluation({}, {}) == {}  # a failed run's empty section stays empty


def test_a_schema_1_record_reports_as_it_did(tmp_path):
    record = read_record(_schema_1_record(tmp_path))
    raw = json.loads(record_path(tmp_path, TINY.experiment, TINY.run_id).read_text())
    for shown in (record, raw):  # read through read_record, or handed over as the file's JSON
        row = tables.summarise([shown])[0].iloc[0]
        assert row["linear_top1_mean"] == pytest.approx(81.0) and row["knn_top1@20_mean"] == pytest.approx(72.0)
        assert row["knn_top1@10_mean"] == pytest.approx(70.0) and row["few_shot_1_mean"] == pytest.approx(30.0)
        assert probe_accuracy(shown, "linear") == 0.81 and probe_accuracy(shown, "knn") == 0.72
        assert few_shot_accuracies(shown) == {1: (0.3, 0.01)}
        assert describe(shown)["evaluation.probes.knn.top1@20"] == 0.72
    console = tables.format_console_table([record])
    assert "81.00" in console and "72.00" in console and "kNN@20 top-1: kNN k=20 T=0.07, feature two_block" in console


def test_status_reads_each_probes_headline(tmp_path):
    from slurm.status import _state_from_record

    state = _state_from_record(TINY, _schema_1_record(tmp_path), None)
    assert state.state == "done" and state.detail == "linear top-1 0.8100, kNN@20 top-1 0.7200"
