"""The univariate goodness-of-fit statistics LeJEPA compares (paper section 4.2, Fig. 5), against N(0, 1).

Every statistic takes samples x of shape (N,) (one direction: a 0-d tensor back) or (N, K) (K directions,
one column each: K values back), as a torch tensor or anything torch.as_tensor reads; numpy input is
computed in float64. All are torch expressions, so all are differentiable in the samples (the EDF ones
through the sort, almost everywhere), which the gradient-descent figures (Figs. 6, 16) need.

- moment family (4.2.1): `vcreg` matches mean and variance, N mu^2 / sigma^2 + (N - 1)(sigma^2 - 1)^2 / 2,
  the first two terms of the paper's extended Jarque-Bera; `jarque_bera` is the classical
  N / 6 (skew^2 + (kurt - 3)^2 / 4) on the biased moments (as scipy.stats.jarque_bera), and
  `extended_jarque_bera` = vcreg + jarque_bera, the paper's (Extended Jarque-Bera). sigma^2 in the first two
  terms is the unbiased sample variance (the paper does not say which; assumed).
- EDF family (4.2.2), with z_(i) = Phi(x_(i)) for the sorted sample: Cramer-von Mises
  W^2 = 1 / (12 N) + sum_i (z_(i) - (2i - 1) / (2N))^2; Watson U^2 = W^2 - N (mean z - 1/2)^2; Anderson-Darling
  A^2 = -N - 1/N sum_i (2i - 1) [log z_(i) + log(1 - z_(N+1-i))], the logs via log_ndtr so that far tails
  stay finite.
- characteristic-function family (4.2.3): `epps_pulley` is the suite's own SIGReg statistic,
  lejepa.sigreg.epps_pulley_direct (window exp(-t^2/2), trapezoid on [0, t_max] doubled), not a second copy.

`sliced` averages a statistic over the projections of embeddings (N, D) on directions (D, M): the paper's
(SIGReg) definition with any T; for Epps-Pulley it calls lejepa.sigreg.sigreg, whose backward pass is the
suite's fast one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from lejepa.sigreg import epps_pulley_direct, sigreg

Statistic = Callable[[torch.Tensor], torch.Tensor]
MIN_SAMPLES = 4


def as_samples(x) -> tuple[torch.Tensor, bool]:
    """x as an (N, K) floating tensor, and whether it was one direction (N,)."""
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.ndim not in (1, 2):
        raise ValueError(f"samples must have shape (N,) or (N, K) (one column per direction), got "
                         f"{tuple(t.shape)}; reshape them first")
    single = t.ndim == 1
    t = t[:, None] if single else t
    if t.shape[0] < MIN_SAMPLES:
        raise ValueError(f"a normality statistic needs at least {MIN_SAMPLES} samples, got {t.shape[0]}")
    return t, single


def _per_direction(compute: Callable[[torch.Tensor], torch.Tensor]) -> Statistic:
    def statistic(x) -> torch.Tensor:
        samples, single = as_samples(x)
        value = compute(samples)
        return value[0] if single else value

    statistic.__name__, statistic.__doc__ = compute.__name__, compute.__doc__
    return statistic


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.special.erfc(-x / math.sqrt(2.0))


@_per_direction
def vcreg(x: torch.Tensor) -> torch.Tensor:
    """Mean and variance against 0 and 1: N mu^2 / sigma^2 + (N - 1)(sigma^2 - 1)^2 / 2 (paper 4.2.1)."""
    n = x.shape[0]
    mean, var = x.mean(0), x.var(0, unbiased=True)
    return n * mean**2 / var + (n - 1) * (var - 1) ** 2 / 2


@_per_direction
def jarque_bera(x: torch.Tensor) -> torch.Tensor:
    """N / 6 (skew^2 + (kurt - 3)^2 / 4) on the biased moments (Jarque and Bera 1980; paper 4.2.1)."""
    n = x.shape[0]
    centred = x - x.mean(0)
    m2 = (centred**2).mean(0)
    skew = (centred**3).mean(0) / m2**1.5
    kurt = (centred**4).mean(0) / m2**2
    return n / 6 * (skew**2 + (kurt - 3) ** 2 / 4)


def extended_jarque_bera(x) -> torch.Tensor:
    """The paper's (Extended Jarque-Bera): vcreg's mean and variance terms plus Jarque-Bera."""
    return vcreg(x) + jarque_bera(x)


def _sorted_cdf(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ordered = torch.sort(x, dim=0).values
    ranks = torch.arange(1, x.shape[0] + 1, dtype=x.dtype, device=x.device)[:, None]
    return ordered, ranks


@_per_direction
def cramer_von_mises(x: torch.Tensor) -> torch.Tensor:
    """W^2 = 1 / (12 N) + sum_i (Phi(x_(i)) - (2i - 1) / (2N))^2 (paper 4.2.2, weight w = 1)."""
    n = x.shape[0]
    ordered, ranks = _sorted_cdf(x)
    return 1 / (12 * n) + ((_normal_cdf(ordered) - (2 * ranks - 1) / (2 * n)) ** 2).sum(0)


@_per_direction
def watson(x: torch.Tensor) -> torch.Tensor:
    """U^2 = W^2 - N (mean Phi(x) - 1/2)^2 (Watson 1961; paper (Watson))."""
    n = x.shape[0]
    return cramer_von_mises(x) - n * (_normal_cdf(x).mean(0) - 0.5) ** 2


@_per_direction
def anderson_darling(x: torch.Tensor) -> torch.Tensor:
    """A^2 = -N - 1/N sum_i (2i - 1)[log Phi(x_(i)) + log(1 - Phi(x_(N+1-i)))] (paper 4.2.2,
    weight [F (1 - F)]^-1)."""
    n = x.shape[0]
    ordered, ranks = _sorted_cdf(x)
    log_lower = torch.special.log_ndtr(ordered)
    log_upper = torch.special.log_ndtr(-ordered.flip(0))  # log(1 - Phi(x_(N+1-i)))
    return -n - ((2 * ranks - 1) * (log_lower + log_upper)).sum(0) / n


def epps_pulley(x, t_max: float = 3.0, knots: int = 17) -> torch.Tensor:
    """The suite's SIGReg statistic per direction (lejepa.sigreg.epps_pulley_direct)."""
    samples, single = as_samples(x)
    value = epps_pulley_direct(samples, t_max=t_max, knots=knots)
    return value[0] if single else value


# The paper's order in Figs. 5 and 6: moments, EDF, characteristic function.
STATISTICS: dict[str, tuple[str, Statistic]] = {
    "vcreg": ("VCReg", vcreg),
    "extended_jarque_bera": ("Extended Jarque-Bera", extended_jarque_bera),
    "cramer_von_mises": ("Cramér-von Mises", cramer_von_mises),
    "watson": ("Watson", watson),
    "anderson_darling": ("Anderson-Darling", anderson_darling),
    "epps_pulley": ("Epps-Pulley", epps_pulley),
}


def statistic(name: str) -> Statistic:
    if name not in STATISTICS:
        raise KeyError(f"unknown statistic {name!r}; known: {', '.join(STATISTICS)}")
    return STATISTICS[name][1]


def label(name: str) -> str:
    statistic(name)
    return STATISTICS[name][0]


def sliced(name: str, z: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """The paper's (SIGReg) with statistic `name`: its mean over the projections of z (N, D) on the unit
    directions (D, M). Differentiable in z."""
    if z.ndim != 2 or directions.ndim != 2 or z.shape[1] != directions.shape[0]:
        raise ValueError(f"need embeddings (N, D) and directions (D, M), got {tuple(z.shape)} and "
                         f"{tuple(directions.shape)}")
    if name == "epps_pulley":
        return sigreg(z, directions)
    return statistic(name)(z @ directions.to(z.dtype)).mean()
