"""A deliberately broken run (LeJEPA at lr 1e-9: its weights never move) launched, reported and listed
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
  train: {max_steps: 6, batch_size: 32, lr: 1.0e-9, checkpoint_every: 6, log_every: 1}
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
    # The trivial value is lambda x SIGReg of 32 equal embeddings; a random network's loss sits near it.
    assert checks["loss_below_trivial"]["trivial"] == pytest.approx(0.05 * collapsed_sigreg(32))
    assert checks["loss_below_trivial"]["value"] > TRIVIAL_FRACTION * checks["loss_below_trivial"]["trivial"]
    # With 6 logged steps the windows are single steps: the fall is step 1's loss to step 6's, whose sign is
    # noise here (the weights do not move), so only its arithmetic is checked.
    logged = [json.loads(line) for line in (results / "broken" / broken["run_id"] / "metrics.jsonl").open()]
    fell = checks["loss_fell"]
    assert (fell["start_steps"], fell["end_steps"]) == ([1, 1], [6, 6])
    assert fell["value"] == pytest.approx((logged[0]["loss"] - logged[-1]["loss"]) / logged[0]["loss"])
    assert fell["threshold"] == MIN_RELATIVE_FALL
    assert not any(check["uses_labels"] for check in checks.values())  # the job's checks are label-free
    capsys.readouterr()

    assert main(["status", *args]) == 0
    status = capsys.readouterr().out
    line = next(line for line in status.splitlines() if line.startswith(broken["run_id"]))
    assert line.split()[1] == "done" and "DID NOT LEARN: loss_below_trivial" in line
    assert "DID NOT LEARN" not in next(line for line in status.splitlines() if line.startswith(reference["run_id"]))

    assert main(["report", *args]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("lejepa"))
    assert "did not learn: 1 of 1 (not in the mean)" in row and f"{100 * broken['evaluation']['linear_top1']:.2f}" not in row
    assert f"{broken['run_id']}: did not learn: loss_below_trivial" in printed
    report_md = (results / "broken" / "report.md").read_text()
    assert f"- {broken['run_id']}: did not learn: loss_below_trivial" in report_md
    assert "did not learn: 1 of 1 (not in the mean)" in (results / "broken" / "table.md").read_text()

    assert main(["report", *args, "--include-unhealthy"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("lejepa"))
    assert "(in the mean)" in row and f"{100 * broken['evaluation']['linear_top1']:.2f}" in row
