"""Linear probe on frozen features (LeJEPA paper's protocol; grid selection as in DINOv2's linear eval).

A grid of heads (LayerNorm then Linear) over learning rates x feature choices trains in one pass over
the cached features with AdamW, weight decay 1e-6, linear warm-up then cosine. The head with the best
top-1 on a held-out part of train is chosen, and only that head is evaluated on test, once. (Peers
choose on the test split; we do not, and the record says which head won.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

WARMUP_FRACTION = 0.1


@dataclass(frozen=True)
class ProbeResult:
    top1: float
    top5: float | None
    lr: float
    features: str
    holdout_top1: float


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


def train_heads(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, lrs: tuple[float, ...],
    choices: dict[str, slice], epochs: int, batch_size: int, weight_decay: float, seed: int,
) -> tuple[nn.ModuleList, list[tuple[float, str]]]:
    """Train one head per (lr, feature choice) on the same mini-batches; returns heads and their labels."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    grid = [(lr, name) for lr in lrs for name in choices]
    dims = {name: features[:, sl].shape[1] for name, sl in choices.items()}
    heads = nn.ModuleList(nn.Sequential(nn.LayerNorm(dims[name]), nn.Linear(dims[name], num_classes))
                          for _, name in grid)
    optimizer = torch.optim.AdamW(
        [{"params": head.parameters(), "lr": lr, "peak": lr} for head, (lr, _) in zip(heads, grid)],
        weight_decay=weight_decay,
    )
    steps_per_epoch = max(1, math.ceil(len(features) / batch_size))
    total, warmup = epochs * steps_per_epoch, max(1, round(WARMUP_FRACTION * epochs * steps_per_epoch))
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(features), batch_size):
            batch = order[start : start + batch_size]
            x, y = features[batch], labels[batch]
            scale = (step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
            for group in optimizer.param_groups:
                group["lr"] = group["peak"] * scale
            loss = sum(nn.functional.cross_entropy(head(x[:, choices[name]]), y)
                       for head, (_, name) in zip(heads, grid))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
    return heads, grid


@torch.no_grad()
def linear_probe(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
    test_labels: torch.Tensor, num_classes: int, *, lrs: tuple[float, ...], choices: dict[str, slice],
    epochs: int, batch_size: int, weight_decay: float, holdout_fraction: float, seed: int,
) -> ProbeResult:
    fit, holdout = holdout_split(train_labels, holdout_fraction, seed)
    with torch.enable_grad():
        heads, grid = train_heads(train_features[fit], train_labels[fit], num_classes, lrs, choices, epochs,
                                  batch_size, weight_decay, seed)
    heads.eval()
    holdout_scores = [topk_accuracy(head(train_features[holdout][:, choices[name]]), train_labels[holdout], 1)
                      for head, (_, name) in zip(heads, grid)]
    best = int(np.argmax(holdout_scores))
    lr, name = grid[best]
    logits = heads[best](test_features[:, choices[name]])
    top5 = topk_accuracy(logits, test_labels, 5) if num_classes > 10 else None
    return ProbeResult(topk_accuracy(logits, test_labels, 1), top5, lr, name, holdout_scores[best])


def few_shot_probe(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
    test_labels: torch.Tensor, num_classes: int, shots: int, draws: int, *, lr: float, features: slice,
    steps: int, batch_size: int, weight_decay: float, seed: int,
) -> dict:
    """`shots` labelled images per class, `draws` independent draws; the lr and features are those the
    full-data probe chose on its held-out split (with one shot there is nothing to hold out).

    The head trains for `steps` optimiser steps, the full-data probe's count, in mini-batches of at most
    `batch_size`: an lr chosen for that many steps means little over the few steps that "the same epochs"
    would give a handful of images (1-shot, 20 epochs: 20 steps, too few at lr 1e-3 to leave chance)."""
    accuracies = []
    labels_np = train_labels.numpy()
    for draw in range(draws):
        rng = np.random.default_rng([seed, shots, draw])
        chosen = np.concatenate([rng.choice(np.flatnonzero(labels_np == c), size=min(shots, int((labels_np == c).sum())),
                                            replace=False) for c in range(num_classes) if (labels_np == c).any()])
        batch = min(batch_size, len(chosen))
        epochs = math.ceil(steps / math.ceil(len(chosen) / batch))
        heads, _ = train_heads(train_features[chosen], train_labels[chosen], num_classes, (lr,), {"f": features},
                               epochs, batch, weight_decay, seed + draw)
        with torch.no_grad():
            accuracies.append(topk_accuracy(heads[0](test_features[:, features]), test_labels, 1))
    return {"mean": float(np.mean(accuracies)), "std": float(np.std(accuracies)), "draws": accuracies}
