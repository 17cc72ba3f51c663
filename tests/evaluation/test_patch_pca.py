"""Paper Fig. 14: PCA of a ViT checkpoint's last-layer patch features as RGB (fig_patch_pca.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_tiny_spec

from evaluation.paper_figures import REGISTRY, SkipFigure, write_paper_figures
from evaluation.paper_figures import fig_patch_pca as pca
from lejepa.train import pretrain

TINY_VIT = {"arch": "vit_tiny_patch16_224", "timm_kwargs": {"embed_dim": 24, "depth": 1, "num_heads": 2}}


def test_pca_colours_recover_the_three_strongest_directions():
    generator = torch.Generator().manual_seed(0)
    # what each patch "is" along three directions: centred, uncorrelated codes (orthonormal columns)
    raw = torch.rand(32, 3, generator=generator, dtype=torch.float64)
    codes = torch.linalg.qr(raw - raw.mean(0))[0].reshape(2, 16, 3).float()
    basis = torch.linalg.qr(torch.randn(12, 3, generator=generator))[0].T  # 3 orthonormal directions in 12-D
    tokens = (codes * torch.tensor([10.0, 5.0, 2.0])) @ basis + 0.01 * torch.randn(2, 16, 12, generator=generator)
    colours, fractions = pca.patch_pca_rgb(tokens)
    assert colours.shape == (2, 16, 3) and colours.min() == 0.0 and colours.max() == 1.0
    assert fractions[0] > fractions[1] > fractions[2] and fractions.sum() > 0.99
    for channel in range(3):  # each colour channel is one code, up to sign and scale
        corr = np.corrcoef(colours[..., channel].ravel(), codes[..., channel].numpy().ravel())[0, 1]
        assert abs(corr) > 0.999
    again, _ = pca.patch_pca_rgb(-tokens)  # the signs are fixed by the data, not by the SVD's arbitrary choice
    assert again == pytest.approx(colours, abs=1e-9)


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    """A tiny ViT pretrained 2 steps on digits, in a run folder as the pipeline writes it."""
    spec = make_tiny_spec(model=TINY_VIT, train={"max_steps": 2, "checkpoint_every": 2})
    folder = tmp_path_factory.mktemp("results") / spec.experiment / spec.run_id
    pretrain(spec, folder, progress=False)
    (folder / "spec.json").write_text(json.dumps(spec.to_dict()))
    return spec, folder


def test_fig14_draws_each_images_patch_pca_from_a_vit_checkpoint(vit_run, tmp_path):
    spec, folder = vit_run
    drawn = REGISTRY["fig14"].draw(None, checkpoint=folder, images=3)
    axes = drawn.figures.axes
    assert len(axes) == 6
    _, backbone, step = pca.load_run_backbone(folder)
    tokens, grid = pca.patch_tokens(backbone, pca.sample_images(spec, 3))
    assert step == 2 and grid == (4, 4)  # digits at 16 px, patch 4 (lejepa/backbones.py)
    expected, fractions = pca.patch_pca_rgb(tokens)
    for i in range(3):
        shown = axes[3 + i].get_images()[0].get_array()
        assert np.asarray(shown) == pytest.approx(expected[i].reshape(4, 4, 3))
    assert f"step 2: {spec.model.arch} pretrained on digits" in drawn.caption
    assert f"{100 * fractions[0]:.1f} %" in drawn.caption
    (checkpoint,) = sorted((folder / "ckpt").glob("step_*.pt"))
    assert REGISTRY["fig14"].draw(None, checkpoint=checkpoint, images=3).caption == drawn.caption
    paths = write_paper_figures(tmp_path, ["fig14"], options={"fig14": {"checkpoint": folder, "images": 2}})
    assert (tmp_path / "fig14.png").read_bytes()[:4] == b"\x89PNG" and tmp_path / "fig14.caption.txt" in paths


def test_fig14_skips_without_a_checkpoint_or_with_a_non_vit(tmp_path):
    with pytest.raises(SkipFigure, match="needs a ViT checkpoint"):
        REGISTRY["fig14"].draw(None)
    with pytest.raises(SkipFigure, match="does not exist"):
        REGISTRY["fig14"].draw(None, checkpoint=tmp_path / "nowhere")
    spec = make_tiny_spec(train={"max_steps": 1, "checkpoint_every": 1})
    folder = tmp_path / spec.experiment / spec.run_id
    pretrain(spec, folder, progress=False)
    (folder / "spec.json").write_text(json.dumps(spec.to_dict()))
    with pytest.raises(SkipFigure, match="needs a ViT: run .* has resnet18"):
        REGISTRY["fig14"].draw(None, checkpoint=folder)
    write_paper_figures(tmp_path / "out", ["fig14"])
    assert "**fig14**" in (tmp_path / "out" / "figures.md").read_text().split("## Skipped")[1]
