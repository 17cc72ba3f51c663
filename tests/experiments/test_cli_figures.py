"""`lejepa figures paper --records MANIFEST` draws the data figures from a study's records, and `lejepa
report` prints the label-free selection (paper Eq. 8) of the same records; `loss_accuracy_cpu` validates."""

from __future__ import annotations

import math

import pytest
from conftest import write_manifest

from evaluation.record import make_record, write_record
from experiments.cli import main
from experiments.manifest import load_manifest

STUDY = """\
name: eq8study
defaults:
  data: {name: digits}
  model: {arch: resnet18, timm_kwargs: {channels: [8, 16, 32, 64]}, proj_hidden: 64, proj_dim: 16}
  method: {name: lejepa, num_slices: 32}
  train: {max_steps: 4, batch_size: 32}
grid:
  method.lamb: [0.01, 0.04, 0.16, 0.64]
"""
# test_selection.py's runs: scaled losses 4, 3, 2.5, 1 at alpha 0.5; raw rho -0.8, scaled rho +1
SCALED = {0.01: (4.0, 0.6), 0.04: (3.0, 0.7), 0.16: (2.5, 0.8), 0.64: (1.0, 0.9)}


@pytest.fixture
def study(tmp_path):
    path = write_manifest(tmp_path, STUDY, "eq8study")
    results = tmp_path / "results"
    for spec in load_manifest(path).runs:
        s, accuracy = SCALED[spec.method["lamb"]]
        pretrain = {"status": "done", "final_loss": s * math.sqrt(spec.method["lamb"]),
                    "final_parts": {"pred": 0.1, "sigreg": 1.0}}
        write_record(results, make_record(spec, "done", pretrain=pretrain,
                                          evaluation={"linear_top1": accuracy, "knn_top1@20": accuracy}))
    return path, results


def test_figures_paper_draws_the_data_figures_from_a_manifests_records(study, tmp_path, capsys):
    path, results = study
    out = tmp_path / "figs"
    code = main(["figures", "paper", "--records", str(path), "--results", str(results), "--only",
                 "fig11,fig1a,fig12", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"{path}: 4 of 4 runs have records" in printed
    assert (out / "fig11.png").exists() and (out / "fig1a.pdf").exists() and not (out / "fig12.png").exists()
    caption = (out / "fig1a.caption.txt").read_text()
    assert "Drawn from 4 record(s) of eq8study: a suite study" in caption
    assert "= -0.800 raw and +1.000 at alpha = 0.4 (n = 4)" in caption
    index = (out / "figures.md").read_text()
    assert "**fig12**" in index.split("## Skipped")[1] and "evaluation.few_shot" in index


def test_without_records_the_data_figures_skip_naming_their_manifest(tmp_path):
    assert main(["figures", "paper", "--only", "fig8", "--out", str(tmp_path)]) == 0
    assert "needs the records of manifest paper/table7" in (tmp_path / "figures.md").read_text()


def test_an_unknown_records_manifest_is_bad_input(tmp_path, capsys):
    assert main(["figures", "paper", "--records", "no_such_study", "--out", str(tmp_path)]) == 2
    assert "no_such_study" in capsys.readouterr().err


def test_report_prints_the_label_free_selection(study, capsys):
    path, results = study
    assert main(["report", str(path), "--results", str(results)]) == 0
    printed = capsys.readouterr().out
    assert "Label-free model selection (paper Eq. 8):" in printed
    assert "picked 90.00 % vs best 90.00 %" in printed and "rho = +1.000 at alpha 0.4, -0.800 on the raw" in printed
    report = (results / "eq8study" / "report.md").read_text()
    assert "## Label-free model selection (paper Eq. 8)" in report


def test_the_cpu_study_varies_lambda_lr_and_epochs_over_at_least_20_runs():
    runs = load_manifest("loss_accuracy_cpu").runs
    assert len(runs) >= 20
    assert len({r.method["lamb"] for r in runs}) >= 3
    assert len({r.train.lr for r in runs}) >= 2 and len({r.train.epochs for r in runs}) >= 2
    assert {r.resources.cpus_per_task for r in runs} == {1}
