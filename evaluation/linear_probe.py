"""Linear probe on frozen features (LeJEPA paper's protocol; grid selection as in DINOv2's linear eval).

A grid of heads, normalisations x learning rates x feature choices, trains in one pass over the cached
features with AdamW, weight decay 1e-6, linear warm-up then cosine, each head minimising its own mean
cross-entropy. The head with the lowest cross-entropy on a held-out part of train is chosen (ties: the
better held-out top-1), and only that head is evaluated on test, once. (Peers choose on the test split;
we do not, and the record names the head that won, e.g. "standardize_lr0.01_all".) Cross-entropy, not
top-1 as DINOv2 chooses: on 1,000 held-out images top-1 differs by noise between neighbouring heads (a
standard error of about 1.2 points) and does not see an over-confident, over-fitted head; on the
quickstart's raw pixels top-1 chose a head 1 point below logistic regression on test, cross-entropy one
0.5 below (benchmarks/probe_vs_logreg.py).

Normalisations (evaluation/probe_normalization.py): LayerNorm, per-feature standardisation (the MAE
protocol's BatchNorm without affine parameters) and ZCA whitening (where the fit split has 10 images per
feature dimension), each fitted on the fit split.
Learning rates: DINOv2's 13 (facebookresearch/dinov2, dinov2/eval/linear.py, 1e-5 to 0.1 in a 1-2-5
progression; theirs are SGD's at batch 256), kept as they are for AdamW: on the quickstart's features
the chosen lr ranges from 1e-4 (raw pixels, where few steps act as regularisation) to 0.1 (whitened
random-init features), inside the grid.

One pass, not heads-times the work: heads of one (normalisation, feature choice) differ only by lr, so
their linear layers are one stacked (features, lrs x classes) weight trained by one matmul per step,
with the gradient written out and AdamW applied elementwise with a learning rate per column; the
normalisation is computed once per (normalisation, feature choice), on the whole fit split when its
copy is small (FIT_COPY_BYTES), else per mini-batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from evaluation.probe_normalization import NORMS, WHITEN_SAMPLES_PER_DIM, applies, fit_normalization

WARMUP_FRACTION = 0.1
DEFAULT_LRS = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.AdamW's defaults
MIN_STEPS = 1000  # the quickstart's 30 epochs of 9,000 images in batches of 256 are 1,080
EVAL_CHUNK = 4096  # rows per matmul when scoring held-out and test features
FIT_COPY_BYTES = 2**30  # normalised copies of the fit split up to this size in all; beyond, per mini-batch


@dataclass(frozen=True)
class ProbeResult:
    top1: float
    top5: float | None
    lr: float
    features: str
    holdout_top1: float
    norm: str
    name: str  # e.g. "standardize_lr0.01_all": what the head is (DINOv2 names its heads so)
    steps: int  # optimiser steps each head took (the few-shot probe's budget)
    holdout_cross_entropy: float  # what chose the head
    holdout_by_head: dict[str, dict[str, float]] = field(default_factory=dict, compare=False)  # top1, cross_entropy


def head_name(norm: str, lr: float, features: str) -> str:
    return f"{norm}_lr{lr:g}_{features}"


def holdout_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (fit, holdout) index arrays: `fraction` of each class goes to holdout (at least one)."""
    rng = np.random.default_rng(seed)
    fit, holdout = [], []
    labels_np = labels.numpy()
    for c in np.unique(labels_np):
        members = rng.permutation(np.flatnonzero(labels_np == c))
        cut = max(1, round(fraction * len(members))) if len(members) > 1 else 0
        holdout.extend(members[:cut])
        fit.extend(members[cut:])
    return np.sort(np.asarray(fit)), np.sort(np.asarray(holdout, dtype=int))


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(1).float().mean().item()


@dataclass
class HeadGroup:
    """The heads of one (normalisation, feature choice), one per lr: linear layers stacked column-wise
    into weight (D, lrs x classes) and bias (lrs x classes), head i in columns [i*C, (i+1)*C)."""

    norm: str
    features: str
    columns: slice
    normalize: Callable[[torch.Tensor], torch.Tensor]  # fitted on the fit split
    lrs: tuple[float, ...]
    weight: torch.Tensor
    bias: torch.Tensor

    @property
    def names(self) -> list[str]:
        return [head_name(self.norm, lr, self.features) for lr in self.lrs]

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """(N, lrs, C) logits of every head of the group for raw (un-normalised, all-column) features."""
        x = self.normalize(features[:, self.columns].float())
        return torch.addmm(self.bias, x, self.weight).view(len(x), len(self.lrs), -1)

    def scores(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per head: (top-1 accuracy, mean cross-entropy) on `features`, computed in row chunks."""
        correct = torch.zeros(len(self.lrs), dtype=torch.float64)
        loss = torch.zeros(len(self.lrs), dtype=torch.float64)
        for start in range(0, len(features), EVAL_CHUNK):
            logits, y = self.logits(features[start : start + EVAL_CHUNK]), labels[start : start + EVAL_CHUNK]
            correct += (logits.argmax(-1) == y[:, None]).sum(0).double()
            log_probs = logits.log_softmax(-1)
            loss -= log_probs.gather(-1, y[:, None, None].expand(-1, len(self.lrs), 1))[..., 0].sum(0).double()
        return correct / len(features), loss / len(features)

    def head_logits(self, features: torch.Tensor, index: int) -> torch.Tensor:
        """(N, C) logits of the group's head `index` alone."""
        c = self.bias.numel() // len(self.lrs)
        x = self.normalize(features[:, self.columns].float())
        return torch.addmm(self.bias[index * c : (index + 1) * c], x, self.weight[:, index * c : (index + 1) * c])


class StackedAdamW:
    """torch.optim.AdamW's update (decoupled weight decay, bias-corrected moments), elementwise, with a
    learning rate per column: one call steps every head of a group, each at its own lr."""

    def __init__(self, params: list[torch.Tensor], column_lrs: torch.Tensor, weight_decay: float):
        self.params, self.column_lrs, self.weight_decay = params, column_lrs, weight_decay
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]
        self.steps = 0

    def step(self, grads: list[torch.Tensor], scale: float) -> None:
        self.steps += 1
        beta1, beta2 = ADAM_BETAS
        lr = self.column_lrs * scale
        step_size = lr / (1 - beta1**self.steps)
        root_correction = math.sqrt(1 - beta2**self.steps)
        for p, g, m, v in zip(self.params, grads, self.first, self.second):
            p.mul_(1 - lr * self.weight_decay)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.sub_(step_size * m / (v.sqrt() / root_correction).add_(ADAM_EPS))


def lr_scale(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@torch.no_grad()
def train_heads(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, lrs: tuple[float, ...],
    choices: dict[str, slice], epochs: int, batch_size: int, weight_decay: float, seed: int,
    norms: tuple[str, ...] = NORMS, statistics_from: torch.Tensor | None = None,
) -> list[HeadGroup]:
    """Train one head per (normalisation, feature choice, lr) on the same mini-batches, minimising each
    head's mean cross-entropy. The normalisations take their statistics from `statistics_from` (default:
    `features`); "whiten" is left out where they have too few samples (probe_normalization.applies).
    Heads start at zero (the problem is convex: no symmetry to break, and no draw to depend on).
    Gradients are written out (softmax minus one-hot), not taken by autograd."""
    features = features.float()
    statistics = features if statistics_from is None else statistics_from.float()
    generator = torch.Generator().manual_seed(seed)
    groups, optimizers = [], []
    column_lrs = torch.tensor(lrs, dtype=torch.float32).repeat_interleave(num_classes)
    for norm in norms:
        for name, columns in choices.items():
            dims = features[:1, columns].shape[1]
            if not applies(norm, len(statistics), dims):
                continue
            group = HeadGroup(norm, name, columns, fit_normalization(norm, statistics[:, columns]), tuple(lrs),
                              torch.zeros(dims, len(lrs) * num_classes), torch.zeros(len(lrs) * num_classes))
            groups.append(group)
            optimizers.append(StackedAdamW([group.weight, group.bias], column_lrs, weight_decay))
    if not groups or not lrs:
        raise ValueError(
            f"the probe has no head to train: lrs={lrs}, feature choices={list(choices)}, normalisations={norms} "
            f"(whiten needs {WHITEN_SAMPLES_PER_DIM} samples per feature dimension, here {len(statistics)} "
            f"samples); give at least one lr, one feature choice and layernorm or standardize"
        )
    copy_bytes = sum(group.weight.shape[0] for group in groups) * len(features) * 4
    fit_inputs = ([group.normalize(features[:, group.columns]) for group in groups]
                  if copy_bytes <= FIT_COPY_BYTES else None)
    steps_per_epoch = max(1, math.ceil(len(features) / batch_size))
    total, warmup = epochs * steps_per_epoch, max(1, round(WARMUP_FRACTION * epochs * steps_per_epoch))
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(features), batch_size):
            batch = order[start : start + batch_size]
            y, rows = labels[batch], torch.arange(len(batch))
            scale = lr_scale(step, warmup, total)
            for g, (group, optimizer) in enumerate(zip(groups, optimizers)):
                x = fit_inputs[g][batch] if fit_inputs else group.normalize(features[batch][:, group.columns])
                grad = torch.addmm(group.bias, x, group.weight).view(len(batch), len(lrs), num_classes)
                grad = grad.softmax(-1)
                grad[rows, :, y] -= 1  # d(mean cross-entropy)/d(logits) = (softmax - one-hot) / batch
                grad = grad.view(len(batch), -1).div_(len(batch))
                optimizer.step([x.T @ grad, grad.sum(0)], scale)
            step += 1
    return groups


@torch.no_grad()
def linear_probe(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
    test_labels: torch.Tensor, num_classes: int, *, lrs: tuple[float, ...] = DEFAULT_LRS,
    choices: dict[str, slice], epochs: int, batch_size: int, weight_decay: float, holdout_fraction: float,
    seed: int, norms: tuple[str, ...] = NORMS, min_steps: int = MIN_STEPS,
) -> ProbeResult:
    """Train the grid on the fit part of train, choose on its held-out part, evaluate the choice on test.
    Small training sets get more than `epochs` epochs, so that every head takes at least `min_steps`
    optimiser steps: 30 epochs of 1,300 digits in batches of 256 are 180 steps, too few to converge."""
    fit, holdout = holdout_split(train_labels, holdout_fraction, seed)
    epochs = max(epochs, math.ceil(min_steps / math.ceil(len(fit) / batch_size)))
    groups = train_heads(train_features[fit], train_labels[fit], num_classes, lrs, choices, epochs,
                         batch_size, weight_decay, seed, norms)
    holdout_x, holdout_y = train_features[holdout], train_labels[holdout]
    candidates = []  # (loss, -top-1, group, index): lowest held-out cross-entropy, ties to the better top-1
    for g, group in enumerate(groups):
        accuracy, loss = group.scores(holdout_x, holdout_y)
        candidates += [(loss[i].item(), -accuracy[i].item(), g, i) for i in range(len(lrs))]
    holdout_loss, holdout_top1, g, i = min(candidates)
    best = groups[g]
    logits = best.head_logits(test_features, i)
    top5 = topk_accuracy(logits, test_labels, 5) if num_classes > 10 else None
    by_head = {groups[cg].names[ci]: {"top1": -top1, "cross_entropy": loss} for loss, top1, cg, ci in candidates}
    return ProbeResult(topk_accuracy(logits, test_labels, 1), top5, best.lrs[i], best.features, -holdout_top1,
                       best.norm, best.names[i], epochs * math.ceil(len(fit) / batch_size), holdout_loss, by_head)


def few_shot_probe(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
    test_labels: torch.Tensor, num_classes: int, shots: int, draws: int, *, lr: float, features: slice,
    steps: int, batch_size: int, weight_decay: float, seed: int, norm: str = NORMS[0],
) -> dict:
    """`shots` labelled images per class, `draws` independent draws; the lr, features and normalisation
    are those the full-data probe chose on its held-out split (with one shot there is nothing to hold
    out). The normalisation takes its statistics from all of train's images, which uses none of their
    labels: the images are not what few-shot makes scarce, and ten images cannot estimate a covariance.

    The head trains for `steps` optimiser steps, the full-data probe's count, in mini-batches of at most
    `batch_size`: an lr chosen for that many steps means little over the few steps that "the same epochs"
    would give a handful of images (1-shot, 20 epochs: 20 steps)."""
    accuracies = []
    labels_np = train_labels.numpy()
    for draw in range(draws):
        rng = np.random.default_rng([seed, shots, draw])
        chosen = np.concatenate([rng.choice(np.flatnonzero(labels_np == c), size=min(shots, int((labels_np == c).sum())),
                                            replace=False) for c in range(num_classes) if (labels_np == c).any()])
        batch = min(batch_size, len(chosen))
        epochs = math.ceil(steps / math.ceil(len(chosen) / batch))
        (group,) = train_heads(train_features[chosen], train_labels[chosen], num_classes, (lr,), {"f": features},
                               epochs, batch, weight_decay, seed + draw, (norm,), statistics_from=train_features)
        with torch.no_grad():
            accuracies.append(topk_accuracy(group.head_logits(test_features, 0), test_labels, 1))
    return {"mean": float(np.mean(accuracies)), "std": float(np.std(accuracies)), "draws": accuracies}
