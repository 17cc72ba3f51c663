"""The README's main job, shrunk: the quickstart manifest launched and reported through the CLI.

The real command trains for minutes; here the same manifest runs with overrides that keep every stage
(pretrain, checkpoint, frozen features, linear probe, kNN, record, report) but only a few steps.
"""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.accuracies import probe_accuracy
from experiments.cli import main

# 256 training images make one probe step per epoch: 100 epochs give the probe 100 steps.
SMALL = ["data.train_limit=256", "data.test_limit=200", "train.max_steps=3", "train.batch_size=64",
         "eval.linear_epochs=100", "eval.knn_k=[10,20]"]


def test_quickstart_launch_then_report(tmp_path: Path, capsys):
    assert main(["launch", "quickstart", *SMALL, "--executor", "debug", "--results", str(tmp_path)]) == 0
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "quickstart").glob("*/result.json"))]
    assert sorted(r["spec"]["method"]["name"] for r in records) == ["lejepa", "random_init", "raw_pixels"]
    for record in records:
        assert record["status"] == "done"
        evaluation = record["evaluation"]
        assert evaluation["test_images"] == 200 and evaluation["train_images"] == 256
        assert 0.1 < probe_accuracy(record, "linear") <= 1.0 and 0.1 < probe_accuracy(record, "knn") <= 1.0
    lejepa = next(r for r in records if r["spec"]["method"]["name"] == "lejepa")
    assert lejepa["pretrain"]["steps"] == 3 and set(lejepa["pretrain"]["final_parts"]) == {"pred", "sigreg"}
    assert [line["total_steps"] for line in map(json.loads, (tmp_path / "quickstart" / lejepa["run_id"] /
                                                          "metrics.jsonl").read_text().splitlines())] == [3]
    assert lejepa["evaluation"]["feature_dim"] == 256  # convnet4_28's pooled features (its last block's width)
    raw = next(r for r in records if r["spec"]["method"]["name"] == "raw_pixels")
    # The normalised pixels themselves, one channel: the grey images' three copies are read once.
    assert raw["evaluation"]["feature_dim"] == 28 * 28
    # 256 training images, 200 test images: pixels already separate most classes (chance is 10 %)
    assert 0.6 < probe_accuracy(raw, "linear") < 0.9 and 0.6 < probe_accuracy(raw, "knn") < 0.9

    capsys.readouterr()
    assert main(["report", "quickstart", *SMALL, "--results", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    # Three LeJEPA steps learn nothing, and the health check says so: the row is flagged and its numbers
    # are left out of the table unless asked for.
    assert f"{lejepa['run_id']}: did not learn" in printed
    assert main(["report", "quickstart", *SMALL, "--results", str(tmp_path), "--include-unhealthy"]) == 0
    printed = capsys.readouterr().out
    for name in ("lejepa", "random_init", "raw_pixels", "linear top-1 %", "kNN@20 top-1 %"):
        assert name in printed
    linear = f"{100 * probe_accuracy(lejepa, 'linear'):.1f}"
    assert linear in printed  # the table shows the record's number, in %
    for record in records:  # every row's numbers, as the table prints them
        assert f"{100 * probe_accuracy(record, 'knn'):.2f}" in printed
    for name in ("table.csv", "table.md", "table.tex", "report.md", "report.html"):
        assert (tmp_path / "quickstart" / name).stat().st_size > 0
    assert f"open {tmp_path / 'quickstart' / 'report.html'} in a browser" in printed
    assert len(list((tmp_path / "quickstart" / "tensorboard").glob("*/events.out.tfevents.*"))) == 3

    # Relaunching finds every record done and runs nothing.
    assert main(["launch", "quickstart", *SMALL, "--executor", "debug", "--results", str(tmp_path)]) == 0
    assert "0 run(s) submitted" in capsys.readouterr().out
