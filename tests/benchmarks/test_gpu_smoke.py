"""benchmarks/gpu_smoke.py before any GPU sees it: the dry run takes every code path on the CPU (step rows
eager and compiled, FLOP counting, SIGReg timing, views, prefetch, evaluation) and writes its table; without
a GPU the script says so and writes nothing; rows past the time budget are listed as skipped."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def gpu_smoke():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its neighbour photometric_candidates
    try:
        spec = importlib.util.spec_from_file_location("gpu_smoke", BENCHMARKS / "gpu_smoke.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_smoke"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("gpu_smoke", None)
        sys.path.remove(str(BENCHMARKS))


def _dry_run(gpu_smoke, tmp_path, *args) -> tuple[dict, str]:
    out, numbers = tmp_path / "smoke.md", tmp_path / "smoke.json"
    assert gpu_smoke.main(["--dry-run", "--out", str(out), "--json", str(numbers), *args]) == 0
    return json.loads(numbers.read_text()), out.read_text()


def test_dry_run_measures_every_row_and_writes_the_table(gpu_smoke, tmp_path):
    report, table = _dry_run(gpu_smoke, tmp_path)
    rows = {row["batch"]: row for row in report["steps"]}
    assert sorted(rows) == [2, 4] and all(row["mode"] == "eager" for row in rows.values())
    for row in rows.values():
        assert row["images_per_second"] > 0 and row["step_ms"] > 0 and 0 < row["sigreg_share"] < 1
        assert row["mfu"] == pytest.approx(row["step_flops"] / (row["step_ms"] / 1e3) / (report["peak_tflops"] * 1e12))
    # Model FLOPs scale with the batch: every matmul, convolution and attention does.
    assert rows[4]["step_flops"] == pytest.approx(2 * rows[2]["step_flops"], rel=1e-6)
    assert report["views"]["ours (batched, per-image draws)"]["views_per_second"] > 0
    assert report["prefetch_matches"] is True
    assert report["eval"]["tiny ViT"] > 0
    assert "| tiny ViT | 4 | eager |" in table and "gives the same views as a plain copy: True" in table
    assert table.count("\n| tiny ViT | ") == 3  # two step rows and the evaluation row


@pytest.mark.slow
def test_dry_run_traces_the_compiled_step(gpu_smoke, tmp_path):
    report, table = _dry_run(gpu_smoke, tmp_path, "--batches", "2", "--compile-batches", "2")
    eager, compiled = report["steps"]
    assert (compiled["mode"], compiled["batch"], compiled["step_flops"]) == ("torch.compile", 2, None)
    # MFU of the compiled row: the eager row's FLOP count over the compiled step's time
    assert compiled["mfu"] == pytest.approx(
        eager["step_flops"] / (compiled["step_ms"] / 1e3) / (report["peak_tflops"] * 1e12))
    assert "| tiny ViT | 2 | torch.compile |" in table


def test_without_a_gpu_it_says_so_and_writes_nothing(gpu_smoke, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_smoke.main(["--out", str(tmp_path / "smoke.md")]) == 0
    assert "no CUDA GPU is visible, nothing was measured" in capsys.readouterr().out
    assert not (tmp_path / "smoke.md").exists()


def test_rows_past_the_time_budget_are_listed_as_skipped(gpu_smoke, tmp_path):
    out = tmp_path / "smoke.md"
    assert gpu_smoke.main(["--dry-run", "--budget-s", "0", "--out", str(out)]) == 0
    table = out.read_text()
    assert table.count("time budget spent") == 3  # the evaluation row and the two step rows
    assert "| tiny ViT | 2 | eager | time budget spent |" in table
