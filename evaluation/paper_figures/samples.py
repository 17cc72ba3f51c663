"""The synthetic distributions the theory figures share, each seeded and deterministic on the CPU."""

from __future__ import annotations

import math

import numpy as np
import torch


def x_distribution(samples: int, seed: int, thickness: float = 0.1) -> np.ndarray:
    """The paper's "X" (Fig. 5): x1 ~ N(0, 1), x2 = (s x1 + thickness e) / sqrt(1 + thickness^2) with a
    random sign s and e ~ N(0, 1). Both marginals are exactly N(0, 1) and the covariance is the identity,
    yet along the two arms (45 and 135 degrees) the projection is a spike at 0 plus a wide Gaussian.
    The paper does not give the arms' thickness: 0.1 is assumed."""
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal(samples)
    sign = rng.choice([-1.0, 1.0], size=samples)
    x2 = (sign * x1 + thickness * rng.standard_normal(samples)) / math.sqrt(1 + thickness**2)
    return np.stack([x1, x2], axis=1)


def embedded_x(samples: int, dim: int, seed: int) -> torch.Tensor:
    """N samples of a D-dimensional standard Gaussian whose first two coordinates are replaced by the X
    (the paper's Figs. 6 and 16), float64."""
    if dim < 4:
        raise ValueError(f"the embedded X needs at least 4 dimensions (two X, two Gaussian), got {dim}")
    rng = np.random.default_rng(seed + 1)
    z = rng.standard_normal((samples, dim))
    z[:, :2] = x_distribution(samples, seed)
    return torch.from_numpy(z)


def half_circle_directions(count: int) -> tuple[np.ndarray, np.ndarray]:
    """count unit vectors at angles i * 180 / count degrees, i = 0..count-1 (angles, vectors (2, count))."""
    angles = np.arange(count) * np.pi / count
    return np.degrees(angles), np.stack([np.cos(angles), np.sin(angles)])


def random_unit_directions(dim: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """count directions uniform on the sphere S^(dim-1), as a (dim, count) float64 tensor."""
    directions = torch.randn(dim, count, generator=generator, dtype=torch.float64)
    return directions / directions.norm(dim=0, keepdim=True)


def sliced_w2_to_normal(z: np.ndarray, angles: int = 90) -> float:
    """Mean over `angles` directions of a 2-D sample's squared 2-Wasserstein distance to N(0, 1), from sorted
    projections against the normal quantiles: a Gaussianity error that is none of the six statistics."""
    from scipy.stats import norm

    theta = np.arange(angles) * np.pi / angles
    projections = np.sort(z[:, :2] @ np.stack([np.cos(theta), np.sin(theta)]), axis=0)
    n = len(z)
    quantiles = norm.ppf((np.arange(1, n + 1) - 0.5) / n)[:, None]
    return float(((projections - quantiles) ** 2).mean())


def bhep_to_standard_normal(z: np.ndarray, beta: float = 1.0) -> float:
    """The BHEP statistic of a d-dimensional sample against N(0, I_d) (Baringhaus-Henze-Epps-Pulley; paper
    appendix F), without standardising the sample: n times a Gaussian-weighted L2 distance between the
    empirical and the standard-normal characteristic functions, in closed form."""
    n, d = z.shape
    sq = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    norms = (z**2).sum(-1)
    b2 = beta**2
    return float(np.exp(-b2 * sq / 2).sum() / n
                 - 2 * (1 + b2) ** (-d / 2) * np.exp(-b2 * norms / (2 * (1 + b2))).sum()
                 + n * (1 + 2 * b2) ** (-d / 2))
