"""The normalisations a linear-probe head may put before its linear layer, each fitted once on the
probe's fit split (never on its held-out part or on test).

The LeJEPA paper (section 6) probes with "LayerNorm or BatchNorm" before the linear layer and finds no
clear difference on its own features. Other backbones' features are not so kind: a randomly initialised
ResNet's have a handful of directions carrying nearly all the variance and the class signal in the rest
(the quickstart's: participation rank 1.9 of 128, per-feature standard deviations over three orders of
magnitude). A first-order optimiser with a fixed step budget does not converge on such features; a
normalisation that evens out the variance makes it. Standardising and whitening are affine maps fitted
once, so those heads stay linear classifiers of the frozen features; LayerNorm, the paper's, rescales
each sample on its own:

- "layernorm": each sample normalised across its features: LayerNorm without affine parameters (the
  linear layer after it subsumes them).
- "standardize": each feature centred and scaled by its mean and standard deviation on the fit split,
  as the MAE protocol's BatchNorm without affine parameters (He et al. 2022, "Masked Autoencoders Are
  Scalable Vision Learners", appendix A.2). The features are frozen and un-augmented, so a BatchNorm's
  running statistics converge to exactly these; computing them once gives that normalisation without
  BatchNorm's train/eval mismatch (batch versus running statistics) and without its dependence on the
  batch size (a 1-shot batch is ten images), and every head shares it.
- "whiten": ZCA whitening with the fit split's mean and covariance: every direction, not only every
  axis, gets unit variance. Standardising is not enough when the dominant directions are not along the
  feature axes (the random-init ResNet's leading eigenvector is spread over all 128 features). ZCA, not
  PCA: the whitened features are rotated back to the original axes, because AdamW is not rotation
  invariant: along the principal axes its per-coordinate steps give the pure-noise directions as much
  weight as the few that separate the classes (10-shot heads, lr 1e-2, 1,000 steps, on
  tests/evaluation/test_linear_probe.py's separable clusters: 90% with PCA whitening, 100% with ZCA). Only where the covariance is well estimated, with
  at least WHITEN_SAMPLES_PER_DIM samples per dimension: with fewer, the smallest eigenvalues are mostly
  sampling noise, which whitening blows up to unit variance (measured on 9,000 fit images of raw
  Fashion-MNIST pixels read as 2,352 values, each grey value three times: the best whitened head 81.1% on held-out, the best standardised 83.4%), and
  the D^3 eigendecomposition is then the probe's largest cost.
"""

from __future__ import annotations

import torch

NORMS = ("layernorm", "standardize", "whiten")
WHITEN_SAMPLES_PER_DIM = 10
# A direction whose variance is below this fraction of the largest is scaled as if it had that much:
# at most 1000x its standard deviation, which keeps float32 rounding (1e-7 of the largest) far below 1.
WHITEN_FLOOR = 1e-6
# A feature whose standard deviation is below this fraction of its magnitude varies only by float32
# rounding: it is treated as constant (centred to 0, scale 1).
CONSTANT_FEATURE = 1e-6


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.layer_norm(x, x.shape[-1:])


class Standardize:
    """x -> (x - mean) / std per feature, with the statistics of the features it was built from."""

    def __init__(self, features: torch.Tensor):
        x = features.double()
        std = x.std(0, correction=0)
        self.mean = x.mean(0).float()
        self.scale = torch.where(std > CONSTANT_FEATURE * x.abs().amax(0), std, 1.0).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class Whiten:
    """x -> (x - mean) U diag(1 / sqrt(eigenvalue)) U^T, U the eigenvectors of the covariance of the
    features it was built from: unit variance in every direction (eigenvalues floored at WHITEN_FLOOR x
    the largest), in the features' own axes."""

    def __init__(self, features: torch.Tensor):
        x = features.double()
        mean = x.mean(0)
        centred = x - mean
        eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred / max(1, len(x)))
        floor = WHITEN_FLOOR * eigenvalues.max().clamp_min(torch.finfo(torch.float64).tiny)
        self.mean = mean.float()
        self.projection = ((eigenvectors / eigenvalues.clamp_min(floor).sqrt()) @ eigenvectors.T).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.projection


def applies(norm: str, samples: int, dims: int) -> bool:
    """Whether `norm` is fitted on `samples` x `dims` features at all (whitening needs enough samples)."""
    return norm != "whiten" or samples >= WHITEN_SAMPLES_PER_DIM * dims


def fit_normalization(norm: str, features: torch.Tensor):
    """The normalisation `norm` as a function of (N, D) features, its statistics taken from `features`."""
    if norm == "layernorm":
        return layer_norm
    if norm == "standardize":
        return Standardize(features)
    if norm == "whiten":
        return Whiten(features)
    raise ValueError(f"unknown probe normalisation {norm!r}: use one of {NORMS}")
