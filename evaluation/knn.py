"""Weighted kNN on frozen features (DINO's protocol, Caron et al. 2021, eval_knn.py).

L2-normalised features, cosine similarity, the k nearest training images vote for their class with
weight exp(similarity / T), T = 0.07. DINO reports k = 20 (its Section 3.2); lightly's benchmarks k = 200.
One top-k search serves every k. On a GPU the training features sit on it once and the test images go
through in chunks sized to keep each similarity block near SIMILARITY_BYTES; on the CPU the chunk is 512 test
images, as it always was (the same blocks, so the same numbers).
"""

from __future__ import annotations

import torch

DEFAULT_K = (10, 20, 100, 200)
DEFAULT_TEMPERATURE = 0.07
CPU_CHUNK = 512
SIMILARITY_BYTES = 2**30


def _chunk(train_count: int, device: torch.device) -> int:
    if device.type == "cpu":
        return CPU_CHUNK
    return max(1, min(65536, SIMILARITY_BYTES // (4 * max(1, train_count))))


@torch.no_grad()
def knn_accuracy(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
    test_labels: torch.Tensor, num_classes: int, ks: tuple[int, ...] = DEFAULT_K,
    temperature: float = DEFAULT_TEMPERATURE, device: torch.device | None = None, chunk: int | None = None,
) -> dict[int, float]:
    """Top-1 of the weighted vote for each k (k above the training count means every training image)."""
    device = device or train_features.device
    train = torch.nn.functional.normalize(train_features.to(device).float(), dim=1)
    train_labels = train_labels.to(device)
    k_max = min(max(ks), len(train))
    correct = {k: torch.zeros((), dtype=torch.int64, device=device) for k in ks}
    step = chunk or _chunk(len(train), device)
    for start in range(0, len(test_features), step):
        test = torch.nn.functional.normalize(test_features[start : start + step].to(device).float(), dim=1)
        similarity, neighbours = (test @ train.T).topk(k_max, dim=1)
        votes_weight = (similarity / temperature).exp()
        neighbour_labels = train_labels[neighbours]
        truth = test_labels[start : start + step].to(device)
        for k in ks:
            kk = min(k, k_max)
            votes = torch.zeros(len(truth), num_classes, device=device)
            votes.scatter_add_(1, neighbour_labels[:, :kk], votes_weight[:, :kk])
            correct[k] += (votes.argmax(1) == truth).sum()
    return {k: correct[k].item() / len(test_features) for k in ks}
