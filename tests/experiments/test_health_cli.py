"""A deliberately broken run (experiments/health_check_demo.yaml: LeJEPA at lr 1e-9 for 20 steps, its weights
never move) launched, reported and listed through the CLI: its record says "did not learn" and why, the
report leaves it out of the means and lists it, `lejepa status` says it, and --include-unhealthy puts it
back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.accuracies import probe_accuracy
from evaluation.health import DID_NOT_LEARN, MIN_RELATIVE_FALL, TRIVIAL_FRACTION, collapsed_sigreg
from experiments.cli import main
from experiments.manifest import EXPERIMENTS_DIR

DEMO = EXPERIMENTS_DIR / "health_check_demo.yaml"  # the manifest a researcher launches to see the flag


@pytest.mark.slow
def test_a_run_that_did_not_learn_is_flagged_in_record_report_and_status(tmp_path: Path, capsys):
    results = tmp_path / "results"
    args = [str(DEMO), "--results", str(results)]
    assert main(["launch", *args, "--executor", "debug"]) == 0  # it finishes: nothing crashed or diverged
    records = {json.loads(p.read_text())["spec"]["method"]["name"]: json.loads(p.read_text())
               for p in (results / "health_check_demo").glob("*/result.json")}
    broken, reference = records["lejepa"], records["random_init"]
    assert broken["status"] == "done" and reference["health"] == {"verdict": "reference", "checks": {}}
    checks = broken["health"]["checks"]
    assert broken["health"]["verdict"] == DID_NOT_LEARN
    # The weights never move: the loss ends where it started. 20 logged steps: windows of 4 at each end.
    logged = [json.loads(line)["loss"] for line in (results / "health_check_demo" / broken["run_id"] / "metrics.jsonl").open()]
    fell = checks["loss_fell"]
    assert (fell["start_steps"], fell["end_steps"]) == ([1, 4], [17, 20])
    start, end = sum(logged[:4]) / 4, sum(logged[-4:]) / 4
    assert fell["value"] == pytest.approx((start - end) / start) and fell["threshold"] == MIN_RELATIVE_FALL
    assert fell["passed"] is False
    # SIGReg is compared with its value on 32 equal embeddings; a random network is not that collapsed.
    below = checks["loss_below_trivial"]
    assert (below["term"], below["trivial"]) == ("sigreg", pytest.approx(collapsed_sigreg(32)))
    assert below["value"] == broken["pretrain"]["final_parts"]["sigreg"]
    assert below["threshold"] == pytest.approx(TRIVIAL_FRACTION * below["trivial"])
    assert not any(check["uses_labels"] for check in checks.values())  # the job's checks are label-free
    capsys.readouterr()

    assert main(["status", *args]) == 0
    status = capsys.readouterr().out
    line = next(line for line in status.splitlines() if line.startswith(broken["run_id"]))
    assert line.split()[1] == "done" and "DID NOT LEARN: loss_fell" in line
    assert "DID NOT LEARN" not in next(line for line in status.splitlines() if line.startswith(reference["run_id"]))

    assert main(["report", *args]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("lejepa"))
    assert "did not learn: 1 of 1 (not in the mean)" in row and f"{100 * probe_accuracy(broken, 'linear'):.2f}" not in row
    assert f"{broken['run_id']}: did not learn: loss_fell" in printed
    report_md = (results / "health_check_demo" / "report.md").read_text()
    assert f"- {broken['run_id']}: did not learn: loss_fell" in report_md
    assert "did not learn: 1 of 1 (not in the mean)" in (results / "health_check_demo" / "table.md").read_text()

    assert main(["report", *args, "--include-unhealthy"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("lejepa"))
    assert "(in the mean)" in row and f"{100 * probe_accuracy(broken, 'linear'):.2f}" in row
