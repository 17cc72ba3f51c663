"""Weighted kNN on frozen features (DINO's protocol, Caron et al. 2021, eval_knn.py).

L2-normalised features, cosine similarity, the k nearest training images vote for their class with
weight exp(similarity / T), T = 0.07. k = 20 is the headline number; 10, 100 and 200 are reported too.
"""

from __future__ import annotations

import torch

DEFAULT_K = (10, 20, 100, 200)
DEFAULT_TEMPERATURE = 0.07


@torch.no_grad()
def knn_accuracy(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
    test_labels: torch.Tensor, num_classes: int, ks: tuple[int, ...] = DEFAULT_K,
    temperature: float = DEFAULT_TEMPERATURE, chunk: int = 512,
) -> dict[int, float]:
    train = torch.nn.functional.normalize(train_features.float(), dim=1)
    test = torch.nn.functional.normalize(test_features.float(), dim=1)
    k_max = min(max(ks), len(train))
    correct = {k: 0 for k in ks}
    for start in range(0, len(test), chunk):
        similarity, neighbours = (test[start : start + chunk] @ train.T).topk(k_max, dim=1)
        votes_weight = (similarity / temperature).exp()
        neighbour_labels = train_labels[neighbours]
        truth = test_labels[start : start + chunk]
        for k in ks:
            kk = min(k, k_max)
            votes = torch.zeros(len(truth), num_classes)
            votes.scatter_add_(1, neighbour_labels[:, :kk], votes_weight[:, :kk])
            correct[k] += (votes.argmax(1) == truth).sum().item()
    return {k: correct[k] / len(test) for k in ks}
