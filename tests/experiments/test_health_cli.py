"""A deliberately broken run (LeJEPA at lr 1e-9 for 20 steps: its weights never move) launched, reported and listed
through the CLI: its record says "did not learn" and why, the report leaves it out of the means and lists
it, `lejepa status` says it, and --include-unhealthy puts it back."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from evaluation.health import DID_NOT_LEARN, MIN_RELATIVE_FALL, TRIVIAL_FRACTION, collapsed_sigreg
from experiments.cli import main

BROKEN = """\
name: broken
defaults:
  data: {name: digits, train_limit: 256, test_limit: 100}
  model: {arch: resnet18, timm_kwargs: {channels: [8, 16, 32, 64]}, proj_hidden: 64, proj_dim: 16}
  views: {global_views: 2, local_views: 2}
  train: {max_steps: 20, batch_size: 32, lr: 1.0e-9, checkpoint_every: 20, log_every: 1}
  eval: {linear_epochs: 3, knn_k: [10, 20], linear_lrs: [1.0e-3, 1.0e-2]}
  resources: {cpus_per_task: 1, mem_gb: 2, time_min: 10}
grid:
  method:
    - {name: lejepa, lamb: 0.05, num_slices: 32}
    - {name: random_init}
"""


@pytest.mark.slow
def test_a_run_that_did_not_learn_is_flagged_in_record_report_and_status(tmp_path: Path, capsys):
    manifest, results = tmp_path / "broken.yaml", tmp_path / "results"
    manifest.write_text(textwrap.dedent(BROKEN))
    args = [str(manifest), "--results", str(results)]
    assert main(["launch", *args, "--executor", "debug"]) == 0  # it finishes: nothing crashed or diverged
    records = {json.loads(p.read_text())["spec"]["method"]["name"]: json.loads(p.read_text())
               for p in (results / "broken").glob("*/result.json")}
    broken, reference = records["lejepa"], records["random_init"]
    assert broken["status"] == "done" and reference["health"] == {"verdict": "reference", "checks": {}}
    checks = broken["health"]["checks"]
    assert broken["health"]["verdict"] == DID_NOT_LEARN
    # The weights never move: the loss ends where it started. 20 logged steps: windows of 4 at each end.
    logged = [json.loads(line)["loss"] for line in (results / "broken" / broken["run_id"] / "metrics.jsonl").open()]
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
    assert "did not learn: 1 of 1 (not in the mean)" in row and f"{100 * broken['evaluation']['linear_top1']:.2f}" not in row
    assert f"{broken['run_id']}: did not learn: loss_fell" in printed
    report_md = (results / "broken" / "report.md").read_text()
    assert f"- {broken['run_id']}: did not learn: loss_fell" in report_md
    assert "did not learn: 1 of 1 (not in the mean)" in (results / "broken" / "table.md").read_text()

    assert main(["report", *args, "--include-unhealthy"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("lejepa"))
    assert "(in the mean)" in row and f"{100 * broken['evaluation']['linear_top1']:.2f}" in row
