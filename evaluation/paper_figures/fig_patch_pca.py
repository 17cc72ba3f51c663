"""Paper Fig. 14 (arXiv 2511.08544): the first three principal components of a ViT's last-layer patch
features, shown as RGB, on a handful of images.

Drawn from any ViT checkpoint the suite wrote: `lejepa figures paper --only fig14 --checkpoint RUN_DIR`
(a run folder, results/EXPERIMENT/RUN_ID, whose newest checkpoint is used, or one checkpoint file under its
ckpt/). The images are the first test image of each of the first classes of the run's own dataset. The
components are fitted on the patch tokens of all the shown images together (after the model's final norm),
each min-max scaled to [0, 1] over those images, as the paper colours its maps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from timm.models.vision_transformer import VisionTransformer

from evaluation.paper_figures.registry import (
    Drawn,
    PaperFigure,
    SkipFigure,
    _register,
    new_figure,
)
from lejepa.checkpoint import CHECKPOINT_PATTERN, load_latest_checkpoint, load_state
from lejepa.data import get_dataset
from lejepa.methods import build_method
from lejepa.spec import RunSpec
from lejepa.threads import one_thread
from lejepa.views import eval_transform

NEEDS = "a ViT checkpoint (--checkpoint RUN_DIR, e.g. a run of manifest paper/in1k)"


def patch_pca_rgb(tokens: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(N, P, D) patch tokens -> ((N, P, 3) colours in [0, 1], the 3 components' fractions of variance).

    Each component's sign is fixed so that its largest-magnitude projection is positive (an SVD's signs
    are arbitrary), so the same features always give the same colours."""
    count, patches, dim = tokens.shape
    flat = tokens.reshape(-1, dim).double()
    flat = flat - flat.mean(0)
    _, singular, basis = torch.linalg.svd(flat, full_matrices=False)
    kept = min(3, basis.shape[0])
    projected = flat @ basis[:kept].T
    signs = torch.sign(projected.gather(0, projected.abs().argmax(0, keepdim=True)))
    projected = projected * torch.where(signs == 0, torch.ones_like(signs), signs)
    low, high = projected.min(0).values, projected.max(0).values
    colours = (projected - low) / torch.where(high > low, high - low, torch.ones_like(high))
    if kept < 3:
        colours = torch.cat([colours, colours.new_zeros(len(colours), 3 - kept)], dim=1)
    variance = singular**2
    fractions = (variance[:kept] / variance.sum()).numpy() if variance.sum() > 0 else np.zeros(kept)
    return colours.reshape(count, patches, 3).numpy(), fractions


def _run_folder_and_state(path: Path) -> tuple[Path, Path | None]:
    path = Path(path)
    if path.is_file():
        if not CHECKPOINT_PATTERN.match(path.name) or path.parent.name != "ckpt":
            raise SkipFigure(f"{path} is not a checkpoint of a run (RUN_DIR/ckpt/step_NNNNNNNN.pt); give the run "
                             "folder or one of its checkpoints")
        return path.parent.parent, path
    if not path.is_dir():
        raise SkipFigure(f"checkpoint {path} does not exist; give a run folder (results/EXPERIMENT/RUN_ID)")
    return path, None


def load_run_backbone(path: Path):
    """(spec, trained backbone, step) of the run folder or checkpoint file at `path`."""
    folder, file = _run_folder_and_state(path)
    for name in ("spec.json", "result.json"):
        if (folder / name).exists():
            data = json.loads((folder / name).read_text())
            spec = RunSpec.from_dict(data["spec"] if name == "result.json" else data)
            break
    else:
        raise SkipFigure(f"{folder} has no spec.json or result.json: not a run folder of this suite")
    state = load_state(file) if file else load_latest_checkpoint(folder / "ckpt", spec.run_id)
    if state is None:
        raise SkipFigure(f"{folder} has no checkpoint under ckpt/ (a run that did not pretrain?)")
    info = get_dataset(spec.data.name)
    method = build_method(spec, spec.data.image_size or info.image_size)
    method.load_state_dict(state["model"])
    backbone = method.evaluation_backbone() if hasattr(method, "evaluation_backbone") else method.backbone
    if not isinstance(backbone.model, VisionTransformer):
        raise SkipFigure(f"needs a ViT: run {spec.run_id} has {spec.model.arch} ({type(backbone.model).__name__})")
    return spec, backbone.eval(), int(state["step"])


def sample_images(spec: RunSpec, count: int) -> torch.Tensor:
    """The first test image of each of the first `count` classes (cycling if there are fewer classes),
    transformed as for frozen evaluation."""
    info = get_dataset(spec.data.name)
    dataset = info.load(info.test_split, spec.data.root)
    labels = np.asarray(dataset.targets)
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    chosen = [int(by_class[i % len(by_class)][i // len(by_class)]) for i in range(count)]
    transform = eval_transform(spec.data.image_size or info.image_size, info.mean, info.std)
    return torch.stack([transform(dataset[i][0]) for i in chosen])


@torch.no_grad()
def patch_tokens(backbone, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """The last layer's patch tokens (after the final norm, prefix tokens dropped) and their grid."""
    model = backbone.model
    fitted = backbone._fit(images)
    tokens = model.forward_features(fitted)[:, model.num_prefix_tokens:]
    height, width = (math.ceil(s / p) for s, p in zip(fitted.shape[-2:], model.patch_embed.patch_size))
    if height * width != tokens.shape[1]:
        raise SkipFigure(f"{tokens.shape[1]} patch tokens do not form the {height} x {width} grid of the input")
    return tokens, (height, width)


def draw_patch_pca(checkpoint: Path | str | None = None, images: int = 6) -> Drawn:
    if checkpoint is None:
        raise SkipFigure(f"needs {NEEDS}")
    spec, backbone, step = load_run_backbone(Path(checkpoint))
    info = get_dataset(spec.data.name)
    pixels = sample_images(spec, images)
    tokens, (height, width) = patch_tokens(backbone, pixels)
    colours, fractions = patch_pca_rgb(tokens)
    mean, std = torch.tensor(info.mean).view(3, 1, 1), torch.tensor(info.std).view(3, 1, 1)
    fig, axes = new_figure(2, images, width=1.6, height=1.7)
    for i in range(images):
        shown = (pixels[i] * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
        axes[i].imshow(shown, interpolation="nearest")
        axes[images + i].imshow(colours[i].reshape(height, width, 3), interpolation="nearest")
        for ax in (axes[i], axes[images + i]):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0].set_ylabel("image", fontsize="small")
    axes[images].set_ylabel("PCA → RGB", fontsize="small")
    fig.suptitle(f"{spec.model.arch} on {spec.data.name}, step {step}", fontsize="small")
    shares = ", ".join(f"{100 * f:.1f} %" for f in fractions)
    caption = (f"Checkpoint of run {spec.run_id} ({spec.experiment}), step {step}: {spec.model.arch} pretrained "
               f"on {spec.data.name}. First three principal components of the last layer's {height} x {width} "
               f"patch tokens of {images} test images, fitted together, as RGB; they hold {shares} of the "
               "tokens' variance. The paper's Fig. 14 shows an ImageNet-1k ViT on ImageNet images.")
    return Drawn(fig, caption)


def _make(out_dir: Path | None = None, **options) -> Drawn:
    with one_thread():
        return draw_patch_pca(**options)


# A third kind of entry beside theory and data figures: drawn from a checkpoint, given as the `checkpoint`
# option (the writer passes a figure's options, not records, to any entry that is not a data figure).
_register(PaperFigure(
    "fig14", "PCA of last-layer patch features as RGB",
    "The first three principal components of a ViT's last-layer patch features shown as RGB on a few images "
    "(paper Fig. 14).", NEEDS, "paper", _make, "checkpoint"))
