"""Report figures read back from their matplotlib objects: what was plotted, how many points, the labels,
the Spearman rho in the title, the heatmap's cells, and a clean skip when records lack a field."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_record
from scipy.stats import spearmanr

from evaluation import figures
from lejepa.architectures import family_key, family_of, name_family


def scatter_points(ax) -> np.ndarray:
    return np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())])


class Skips(dict):
    def __call__(self, name: str, reason: str) -> None:
        self[name] = reason


def lambda_sweep(lambdas=(0.01, 0.05, 0.2), views=(2, 4, 6), seeds=(0,)) -> list[dict]:
    return [synthetic_record(seed=s, method={"name": "lejepa", "lamb": lamb}, local_views=v,
                             linear=0.5 + lamb + 0.01 * v + 0.001 * s, loss=1.0 + lamb - 0.02 * v + 0.003 * s)
            for lamb in lambdas for v in views for s in seeds]


def test_loss_vs_accuracy_points_labels_and_rho(tmp_path: Path):
    records = lambda_sweep(seeds=(0, 1))
    records.append(synthetic_record(seed=5, status="failed"))  # not plotted
    fig = figures.loss_vs_accuracy(records, tmp_path)
    ax = fig.axes[0]
    points = scatter_points(ax)
    assert len(points) == 18
    expected = spearmanr(points[:, 0], points[:, 1]).statistic
    rho = float(re.search(r"ρ = ([-+]?\d\.\d+)", ax.get_title()).group(1))
    assert rho == pytest.approx(expected, abs=5e-4)
    losses = sorted(r["pretrain"]["final_loss"] for r in records if r["status"] == "done")
    assert sorted(points[:, 0]) == pytest.approx(losses)
    assert ax.get_xlabel() == "final training loss" and ax.get_ylabel() == "linear probe top-1 (%)"
    assert "0.99" in ax.get_legend().get_title().get_text()  # the paper's reported correlation
    assert (tmp_path / "loss_vs_accuracy.png").stat().st_size > 0 and (tmp_path / "loss_vs_accuracy.pdf").exists()


def test_loss_vs_accuracy_skips_with_too_few_runs(tmp_path: Path):
    skips = Skips()
    assert figures.loss_vs_accuracy(lambda_sweep(lambdas=(0.05,), views=(2, 4)), tmp_path, on_skip=skips) is None
    assert "at least 3" in skips["loss_vs_accuracy"] and "found 2" in skips["loss_vs_accuracy"]
    assert not list(tmp_path.iterdir())


def test_stability_heatmap_cells_are_means_over_seeds():
    records = lambda_sweep(seeds=(0, 1, 2))
    records = [r for r in records if not (r["spec"]["method"]["lamb"] == 0.2 and r["spec"]["views"]["local_views"] == 6)]
    ax = figures.stability_heatmap(records).axes[0]
    grid = ax.images[0].get_array()
    assert grid.shape == (3, 3)  # lambda x views
    assert grid.mask[2, 2] and not grid.mask[:2].any()  # the missing cell is blank, not zero
    assert grid[0, 0] == pytest.approx(100 * (0.5 + 0.01 + 0.01 * 2 + 0.001))  # mean over seeds 0, 1, 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "6", "8"]  # 2 global + local
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.01", "0.05", "0.2"]
    assert ax.get_xlabel() == "views per image (global + local)"


def test_stability_heatmap_falls_back_to_batch_size():
    records = [synthetic_record(method={"name": "lejepa", "lamb": lamb}, batch_size=b, linear=0.7)
               for lamb in (0.02, 0.1) for b in (64, 128, 256, 512)]
    ax = figures.stability_heatmap(records).axes[0]
    assert ax.images[0].get_array().shape == (2, 4) and ax.get_xlabel() == "batch size"


def test_stability_heatmap_skips_without_lambda():
    skips = Skips()
    records = [synthetic_record(method={"name": "random_init"})]
    assert figures.stability_heatmap(records, on_skip=skips) is None
    assert "spec.method.lamb" in skips["stability_heatmap"]


def test_architecture_sweep_bars_ordered_and_coloured_by_family():
    archs = ["vit_tiny_patch16_224", "resnet34", "convnext_atto", "resnet18"]
    records = [synthetic_record("cifar10", arch=a, seed=s, linear=0.6 + 0.05 * i + 0.01 * s)
               for i, a in enumerate(archs) for s in (0, 1)]
    fig = figures.architecture_sweep(records, families={"convnext_atto": "convnet", "resnet18": "convnet"})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    # resnet34 and the ViT take the curated list's families (ResNet, ViT); the others the given one.
    assert labels == ["convnext_atto", "resnet18", "resnet34", "vit_tiny_patch16_224"]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([100 * (0.6 + 0.05 * archs.index(a) + 0.005) for a in labels])
    colours = [p.get_facecolor() for p in ax.patches]
    assert colours[0] == colours[1] and colours[1] != colours[2] != colours[3]
    assert sorted(t.get_text() for t in fig.axes[0].get_legend().get_texts()) == ["ResNet", "ViT", "convnet"]


def test_family_is_the_curated_label_else_the_name_prefix():
    assert family_of("resnet18") == "ResNet" and family_of("convnextv2_atto") == "ConvNeXt-V2"
    assert family_of("resnet26") == "resnet"  # not in the curated list: its name's prefix
    assert family_key("ConvNeXt-V2") == family_key("convnextv2") == name_family("convnextv2_huge")


def test_architecture_sweep_skips_with_one_architecture():
    skips = Skips()
    assert figures.architecture_sweep([synthetic_record()], on_skip=skips) is None
    assert "two architectures" in skips["architecture_sweep"]


def test_sigreg_ablation_one_panel_per_swept_factor():
    records = [synthetic_record(method={"name": "lejepa", "num_slices": k, "knots": 17}, linear=0.7 + k / 1e4)
               for k in (64, 256, 1024)]
    records += [synthetic_record(method={"name": "lejepa", "num_slices": 256, "knots": n}, seed=s, linear=0.8)
                for n in (9, 33) for s in (0, 1)]
    fig = figures.sigreg_ablation(records)
    slices_ax, knots_ax = fig.axes
    line = slices_ax.lines[0]
    assert list(line.get_xdata()) == [64, 256, 1024] and slices_ax.get_xscale() == "log"
    assert list(line.get_ydata()) == pytest.approx([70.64, 72.56, 80.24])
    assert list(knots_ax.lines[0].get_xdata()) == [9, 17, 33]
    assert "num_slices = 256" in knots_ax.get_title()


def test_sigreg_ablation_skips_when_nothing_varies():
    skips = Skips()
    records = [synthetic_record(method={"name": "lejepa", "num_slices": 256}, seed=s) for s in range(3)]
    assert figures.sigreg_ablation(records, on_skip=skips) is None
    assert "two values" in skips["sigreg_ablation"]


def test_transfer_vs_in_domain_bars_per_dataset():
    records = [synthetic_record("dtd", linear=0.5), synthetic_record("dtd", seed=1, linear=0.6),
               synthetic_record("dtd", arch="vit_large_patch14_224", linear=0.8,
                                evaluation={"transfer_from": "imagenet1k"}),
               synthetic_record("pets", linear=0.9)]  # no transfer run for pets: not drawn
    ax = figures.transfer_vs_in_domain(records).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dtd"]
    assert [p.get_height() for p in ax.patches] == pytest.approx([55.0, 80.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "in-domain (resnet18)", "from imagenet1k (vit_large_patch14_224)"]


def test_transfer_vs_in_domain_never_averages_two_backbones():
    """In-domain runs of two architectures are two bars (their seeds averaged), and the transfer run's
    backbone is named: a bar's error is seed spread, not architecture spread."""
    records = [synthetic_record("digits", arch="resnet18", seed=s, linear=acc) for s, acc in ((0, 0.78), (1, 0.80))]
    records += [synthetic_record("digits", arch="convnext_atto", linear=0.83),
                synthetic_record("digits", arch="resnet18", linear=0.86, evaluation={"transfer_from": "fashion_mnist"})]
    ax = figures.transfer_vs_in_domain(records).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "in-domain (convnext_atto)", "in-domain (resnet18)", "from fashion_mnist (resnet18)"]
    assert [p.get_height() for p in ax.patches] == pytest.approx([83.0, 79.0, 86.0])


def test_transfer_skips_without_transfer_runs():
    skips = Skips()
    assert figures.transfer_vs_in_domain([synthetic_record()], on_skip=skips) is None
    assert "transfer_from" in skips["transfer_vs_in_domain"]


def test_embedding_spectrum_lines_per_method_and_isotropy():
    flat, steep = np.ones(32), np.exp(-np.arange(32.0))
    records = [synthetic_record(method={"name": "lejepa"}, seed=s, evaluation={"embedding_spectrum": list(flat * (s + 1))})
               for s in (0, 1)]
    records.append(synthetic_record(method={"name": "random_init"}, linear=0.5, evaluation={"embedding_spectrum": list(steep)}))
    ax = figures.embedding_spectrum(records).axes[0]
    assert ax.get_yscale() == "log" and len(ax.lines) == 2
    lejepa = next(line for line in ax.lines if line.get_label().startswith("lejepa"))
    assert list(lejepa.get_ydata()) == pytest.approx([1 / 32] * 32)  # normalised: isotropic is flat at 1/D
    assert "eff. rank 32/32" in lejepa.get_label()
    assert figures.effective_rank(steep) < 5


def test_embedding_spectrum_names_a_transferred_backbone_by_its_source():
    records = [synthetic_record("digits", evaluation={"embedding_spectrum": list(np.ones(8))}),
               synthetic_record("digits", epochs=0, evaluation={"embedding_spectrum": list(np.ones(8)),
                                                                "transfer_from": "fashion_mnist"})]
    labels = [line.get_label() for line in figures.embedding_spectrum(records).axes[0].lines]
    assert labels == ["lejepa (resnet18), eff. rank 8/8", "lejepa (resnet18, from fashion_mnist), eff. rank 8/8"]


def test_embedding_spectrum_draws_one_line_per_swept_value():
    """A full grid with too many settings for a line each: one line per value of the axis with the most
    values, averaging the runs that differ only along the other axis."""
    flat, steep = np.ones(16), np.exp(-np.arange(16.0))
    records = [synthetic_record(method={"name": "lejepa", "lamb": lamb}, local_views=views,
                                evaluation={"embedding_spectrum": list(flat if views == 4 else steep)})
               for lamb in (0.01, 0.05, 0.2) for views in (2, 4, 6, 8)]
    labels = [line.get_label() for line in figures.embedding_spectrum(records).axes[0].lines]
    steep_rank = f"{figures.effective_rank(steep / steep.sum()):.0f}"
    assert labels == [f"lejepa (resnet18, local_views = {views}), eff. rank {16 if views == 4 else steep_rank}/16"
                      for views in (2, 4, 6, 8)]  # 12 settings: one line per value of the longest axis


def test_embedding_spectrum_draws_each_setting_of_an_ablation():
    """Separate axes (slices at 17 knots, then knots at 256 slices): a line per setting, in numeric order."""
    settings = [(16, 17), (64, 17), (256, 17), (256, 5), (256, 9), (256, 33)]
    records = [synthetic_record(method={"name": "lejepa", "num_slices": k, "knots": j},
                                evaluation={"embedding_spectrum": list(np.ones(8))}) for k, j in settings]
    labels = [line.get_label() for line in figures.embedding_spectrum(records).axes[0].lines]
    assert labels == [f"lejepa (resnet18, knots = {j}, num_slices = {k}), eff. rank 8/8"
                      for k, j in sorted(settings, key=lambda s: (s[1], s[0]))]


def test_embedding_spectrum_skips_without_the_field():
    skips = Skips()
    assert figures.embedding_spectrum([synthetic_record()], on_skip=skips) is None
    assert "evaluation.embedding_spectrum" in skips["embedding_spectrum"]


def test_write_figures_lists_every_skip_and_computes_nothing(tmp_path: Path):
    """One record supports no figure: each says why; nothing else (the SIGReg toy used to be trained here)."""
    paths, skipped, captions = figures.write_figures([synthetic_record()], tmp_path)
    assert paths == [] and captions == {}
    assert set(skipped) == set(figures.FIGURES)
    assert all(reason for reason in skipped.values())
