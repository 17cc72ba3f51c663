"""The paper's data figures (evaluation/paper_figures/fig_loss.py, fig_sweeps.py): each is drawn from
synthetic records and its plotted data read back against numbers computed here by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import synthetic_record
from test_selection import ACCURACY, LAMBDAS, eq8_runs

from evaluation.paper_figures import REGISTRY, SkipFigure
from evaluation.paper_figures.data_figures import figure_inputs
from evaluation.references import load_paper_numbers


def draw(fig_id: str, records: list[dict], **options):
    return REGISTRY[fig_id].draw(None, records=records, **options)


def panels_of(fig) -> list:
    """The figure's plot axes, without colorbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def test_fig11_reads_back_the_rho_curve_computed_by_hand():
    drawn = draw("fig11", eq8_runs(), alphas=(0.0, 0.25, 0.5, 0.75, 1.0))
    (ax,) = drawn.figures.axes
    curve, best = ax.get_lines()[0], ax.get_lines()[1]
    assert list(curve.get_xdata()) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert list(curve.get_ydata()) == pytest.approx([-0.8, 0.2, 1.0, 1.0, 1.0])  # test_selection's by hand
    assert (best.get_xdata()[0], best.get_ydata()[0]) == (0.5, pytest.approx(1.0))
    assert "rho = -0.800 at alpha = 0, best +1.000 at alpha = 0.5, +1.000 at the paper's 0.4" in drawn.caption
    assert "a suite study, not the paper's runs" in drawn.caption


def test_fig11_a_group_at_one_lambda_is_flat_and_says_so():
    runs = [synthetic_record(seed=s, loss=1.0 + s, linear=0.9 - 0.1 * s) for s in range(3)]
    drawn = draw("fig11", runs, alphas=(0.0, 0.5))
    assert list(drawn.figures.axes[0].get_lines()[0].get_ydata()) == pytest.approx([1.0, 1.0])
    assert "one lambda: rho does not depend on alpha" in drawn.caption


def test_fig1a_scatters_loss_against_accuracy_with_both_rhos():
    runs = eq8_runs()
    drawn = draw("fig1a", runs)
    ax = panels_of(drawn.figures)[0]
    points = ax.collections[0].get_offsets()
    assert np.asarray(points) == pytest.approx(
        np.array([(r["pretrain"]["final_loss"], acc * 100) for r, acc in zip(runs, ACCURACY)]))
    assert list(ax.collections[0].get_array()) == pytest.approx([math.log10(v) for v in LAMBDAS])
    assert "= -0.800 raw and +1.000 at alpha = 0.4 (n = 4)" in drawn.caption


def test_fig19_one_panel_per_dataset_and_model():
    drawn = draw("fig19", eq8_runs() + eq8_runs("digits") + [synthetic_record("cifar10")])
    axes = panels_of(drawn.figures)
    assert len(axes) == 2 and "digits, resnet18" in axes[0].get_title()
    assert drawn.caption.count("rho -0.800 raw, +1.000 at alpha 0.4 (n = 4)") == 2


def test_loss_figures_skip_without_enough_comparable_runs():
    with pytest.raises(SkipFigure, match="at least 3 finished runs"):
        draw("fig1a", eq8_runs()[:2] + [synthetic_record("digits")])
    with pytest.raises(SkipFigure, match="needs the records of manifest loss_accuracy_cpu or paper/fig9"):
        draw("fig11", [])


def _with_parts(run: dict, pred: float, sigreg: float) -> dict:
    run["pretrain"]["final_parts"] = {"pred": pred, "sigreg": sigreg}
    return run


def test_fig10_and_fig21_plot_each_runs_parts_coloured_by_accuracy():
    parts = [(0.5, 40.0), (0.3, 10.0), (0.2, 5.0), (0.1, 2.0)]
    runs = [_with_parts(r, *p) for r, p in zip(eq8_runs(), parts)]
    drawn = draw("fig10", runs)
    ax = panels_of(drawn.figures)[0]
    assert np.asarray(ax.collections[0].get_offsets()) == pytest.approx(np.array(parts))
    assert list(ax.collections[0].get_array()) == pytest.approx([a * 100 for a in ACCURACY])
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"  # SIGReg spans 20x, prediction 5x
    assert "60.0-90.0 %, the best at prediction 0.1, SIGReg 2" in drawn.caption
    digits = [_with_parts(r, *p) for r, p in zip(eq8_runs("digits"), parts)]
    assert len(panels_of(draw("fig21", runs + digits).figures)) == 2
    bare = eq8_runs()
    for r in bare:
        r["pretrain"]["final_parts"] = {}
    with pytest.raises(SkipFigure, match="final_parts pred and sigreg"):
        draw("fig10", bare)


def test_fig19b_draws_an_accuracy_logged_during_training_and_skips_without_one(tmp_path):
    runs = eq8_runs()[:2]
    with pytest.raises(SkipFigure, match="needs the runs' folders"):
        draw("fig19b", runs)
    for index, run in enumerate(runs):
        folder = tmp_path / run["experiment"] / run["run_id"]
        folder.mkdir(parents=True)
        lines = [{"step": s, "loss": 2.0 - 0.1 * s - index, "lr": 1e-3} for s in (10, 20, 30)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(SkipFigure, match="no metrics.jsonl line of these 2 runs carries an accuracy"):
        draw("fig19b", runs, results_root=tmp_path)
    folder = tmp_path / runs[0]["experiment"] / runs[0]["run_id"]
    lines = [{"step": s, "loss": 2.0 - 0.1 * s, "online_linear_top1": 0.01 * s} for s in (10, 20, 30)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    drawn = draw("fig19b", runs, results_root=tmp_path)
    ax = drawn.figures.axes[0]
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == pytest.approx([1.0, 0.0, -1.0])
    assert list(line.get_ydata()) == pytest.approx([10.0, 20.0, 30.0])
    assert ax.get_ylabel() == "online_linear_top1 (%)" and "1 run(s); median within-run Spearman rho" in drawn.caption
    assert "= +1.000" in drawn.caption


def test_fig8_means_over_seeds_per_lambda_and_views_beside_table_7():
    runs = []
    for lamb, accs in ((0.01, (0.80, 0.82)), (0.05, (0.84, 0.86))):
        for seed, acc in enumerate(accs):
            run = synthetic_record("imagenet100", {"name": "lejepa", "lamb": lamb}, "resnet50", seed, acc,
                                   epochs=400, local_views=0)
            run["spec"]["views"]["global_views"] = 4
            runs.append(run)
    runs.append(synthetic_record("imagenet100", {"name": "lejepa", "lamb": 0.05}, "resnet50", 0, 0.5,
                                 epochs=400, local_views=2))  # 2 + 2 local: not the same V as 4 global
    other_lr = synthetic_record("imagenet100", {"name": "lejepa", "lamb": 0.01}, "resnet50", 5, 0.1, epochs=400,
                                local_views=0)
    other_lr["spec"]["views"]["global_views"] = 4
    other_lr["spec"]["train"]["lr"] = 1e-2  # another setting: left out, not averaged in as a seed
    runs.append(other_lr)
    drawn = draw("fig8", runs)
    ax = drawn.figures.axes[0]
    ours = next(c for c in ax.containers if c.get_label() == "V = 4").lines[0]  # the errorbar's data line
    assert list(ours.get_xdata()) == [0.01, 0.05] and list(ours.get_ydata()) == pytest.approx([81.0, 85.0])
    paper = next(line for line in ax.get_lines() if line.get_label() == "V = 4, paper (Table 7)")
    table7 = {(e["config"]["method.lamb"], e["config"]["views.global_views"]): e["value"]
              for e in load_paper_numbers()["entries"] if "Table 7" in e["source"]}
    assert list(paper.get_ydata()) == pytest.approx([table7[(0.01, 4)], table7[(0.05, 4)]])
    assert "V = 4: best 85.00 % at lambda 0.05" in drawn.caption
    assert "train.lr = 0.0005 (the most runs; 1 other combination(s) not drawn)" in drawn.caption
    other = next(c for c in ax.containers if c.get_label() == "V = 2 global + 2 local").lines[0]
    assert list(other.get_ydata()) == pytest.approx([50.0])
    assert "a suite study, not the paper's setting (the paper's runs are manifest paper/table7)" in drawn.caption
    for run in runs:
        run["experiment"] = "paper-table7"
    assert "the paper's setting (manifest paper/table7)" in draw("fig8", runs).caption


def test_fig9_best_over_the_grid_per_architecture_sorted():
    grid = {"resnet18": (0.70, 0.75), "convnext_atto": (0.80, 0.60), "resnet34": (0.72, 0.71)}
    runs = [synthetic_record("imagenette", {"name": "lejepa", "lamb": lamb}, arch, linear=acc)
            for arch, accs in grid.items() for lamb, acc in zip((0.02, 0.05), accs)]
    drawn = draw("fig9", runs)
    ax = drawn.figures.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["convnext_atto", "resnet18", "resnet34"]
    assert [bar.get_height() for bar in ax.patches[:3]] == pytest.approx([80.0, 75.0, 72.0])
    assert ax.patches[1].get_facecolor() == ax.patches[2].get_facecolor() != ax.patches[0].get_facecolor()
    assert "3 architectures of 2 families; best-over-grid accuracy from 72.00 % (resnet34) to 80.00 %" in drawn.caption
    with pytest.raises(SkipFigure, match="at least two architectures"):
        draw("fig9", runs[:2])


def test_fig12_few_shot_curves_with_all_at_the_right_beside_table_3():
    runs = []
    for seed, shift in enumerate((0.0, 0.02)):
        few = {"1": {"mean": 0.30 + shift, "std": 0.01, "draws": 3}, "10": {"mean": 0.50 + shift, "std": 0.01,
                                                                          "draws": 3}}
        runs.append(synthetic_record("galaxy10_decals", arch="resnet18", seed=seed, linear=0.75 + shift,
                                     epochs=400, evaluation={"few_shot": few}))
    drawn = draw("fig12", runs)
    ax = drawn.figures.axes[0]
    ours = ax.get_lines()[0]
    assert list(ours.get_xdata()) == [1, 10, 100] and list(ours.get_ydata()) == pytest.approx([31.0, 51.0, 76.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "10", "all"]
    frozen = {e["protocol"]["shots"]: e["value"] for e in load_paper_numbers()["entries"]
              if e["source"].startswith("paper Table 3 (frozen backbone, ResNet-18,")}
    paper = next(line for line in ax.get_lines() if line.get_label() == "resnet18, paper (Table 3, frozen)")
    assert list(paper.get_ydata()) == pytest.approx([frozen[1], frozen[10], frozen[None]])
    dinov2 = {e["protocol"]["shots"]: e["value"] for e in load_paper_numbers()["entries"]
              if e["source"].startswith("paper Table 3 (frozen backbone, DINOv2 Small,")}
    frontier = next(line for line in ax.get_lines() if line.get_label().startswith("DINOv2 Small"))
    assert list(frontier.get_xdata()) == [1, 10, 100]
    assert list(frontier.get_ydata()) == pytest.approx([dinov2[1], dinov2[10], dinov2[None]])
    assert "galaxy10_decals resnet18: 1: 31.0 %, 10: 51.0 %, all: 76.0 %" in drawn.caption
    with pytest.raises(SkipFigure, match="evaluation.few_shot"):
        draw("fig12", eq8_runs())


def test_figure_inputs_hand_records_to_every_data_figure_and_options_to_the_others(tmp_path):
    records, options = figure_inputs(eq8_runs(), tmp_path, tmp_path / "ckpt")
    assert set(records) == {i for i, e in REGISTRY.items() if e.kind == "data"}
    assert options == {"fig19b": {"results_root": tmp_path}, "fig14": {"checkpoint": tmp_path / "ckpt"}}
    assert figure_inputs([], None, None) == ({}, {})
