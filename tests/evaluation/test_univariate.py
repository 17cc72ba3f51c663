"""The univariate normality statistics against scipy where scipy has them, against their formulas where it
does not, batched over directions, differentiable, and small for Gaussian samples / large for bimodal ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from evaluation.paper_figures import univariate
from lejepa.sigreg import epps_pulley_direct, random_directions, sigreg


@pytest.fixture
def gaussian() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(500)


@pytest.fixture
def bimodal() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.choice([-1.5, 1.5], size=500) + 0.3 * rng.standard_normal(500)


def test_cramer_von_mises_matches_scipy(gaussian, bimodal):
    for x in (gaussian, bimodal, 0.5 + 1.3 * gaussian[:37]):
        expected = stats.cramervonmises(x, "norm").statistic
        assert float(univariate.cramer_von_mises(x)) == pytest.approx(expected, rel=1e-10)


def test_jarque_bera_matches_scipy(gaussian, bimodal):
    for x in (gaussian, bimodal, np.exp(gaussian[:50])):
        assert float(univariate.jarque_bera(x)) == pytest.approx(stats.jarque_bera(x).statistic, rel=1e-10)


def test_anderson_darling_matches_scipy_with_known_and_fitted_parameters(gaussian, bimodal):
    for x in (gaussian, bimodal):
        known = stats.goodness_of_fit(stats.norm, x, known_params={"loc": 0, "scale": 1}, statistic="ad",
                                      n_mc_samples=9, rng=0).statistic
        assert float(univariate.anderson_darling(x)) == pytest.approx(known, rel=1e-9)
        # scipy.stats.anderson estimates mean and sd (ddof = 1) first: the same A^2 on the standardised sample
        standardised = (x - x.mean()) / x.std(ddof=1)
        with warnings.catch_warnings():  # SciPy >= 1.17 asks for a p-value method; the statistic is the same
            warnings.simplefilter("ignore", FutureWarning)
            fitted = stats.anderson(x, "norm").statistic
        assert float(univariate.anderson_darling(standardised)) == pytest.approx(fitted, rel=1e-10)


def test_anderson_darling_stays_finite_far_in_the_tails():
    x = np.array([-40.0, -1.0, 0.0, 0.5, 2.0, 45.0])
    assert np.isfinite(float(univariate.anderson_darling(x)))


def test_watson_is_cramer_von_mises_minus_the_mean_term(gaussian, bimodal):
    """U^2 = W^2 - n (zbar - 1/2)^2 with z the normal CDF of the sample (Watson 1961)."""
    for x in (gaussian, bimodal + 0.7):
        z = stats.norm.cdf(np.sort(x))
        expected = stats.cramervonmises(x, "norm").statistic - len(x) * (z.mean() - 0.5) ** 2
        assert float(univariate.watson(x)) == pytest.approx(expected, rel=1e-10)
    # a shift moves the sample's CDF values together: W^2 sees it, U^2 much less
    shifted = gaussian + 0.5
    assert float(univariate.watson(shifted)) < 0.2 * float(univariate.cramer_von_mises(shifted))


def test_moment_statistics_follow_the_paper_formulas(gaussian, bimodal):
    for x in (gaussian, bimodal):
        n, mean, var = len(x), x.mean(), x.var(ddof=1)
        vc = n * mean**2 / var + (n - 1) * (var - 1) ** 2 / 2
        assert float(univariate.vcreg(x)) == pytest.approx(vc, rel=1e-10)
        assert float(univariate.extended_jarque_bera(x)) == pytest.approx(vc + stats.jarque_bera(x).statistic,
                                                                          rel=1e-10)


def test_epps_pulley_is_the_suites_sigreg_statistic(gaussian):
    x = torch.from_numpy(np.stack([gaussian, 2 * gaussian + 1], axis=1))
    assert torch.equal(univariate.epps_pulley(x), epps_pulley_direct(x))
    assert float(univariate.epps_pulley(gaussian)) == pytest.approx(float(epps_pulley_direct(x[:, :1])[0]))
    z = torch.randn(64, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = random_directions(8, 16, seed=0, step=0).to(torch.float64)
    assert float(univariate.sliced("epps_pulley", z, a)) == pytest.approx(float(sigreg(z, a)), rel=1e-12)
    assert float(univariate.sliced("epps_pulley", z, a)) == pytest.approx(
        float(univariate.epps_pulley(z @ a).mean()), rel=1e-10)


@pytest.mark.parametrize("name", list(univariate.STATISTICS))
def test_batched_over_directions_equals_one_at_a_time(name, gaussian, bimodal):
    fn = univariate.statistic(name)
    columns = np.stack([gaussian, bimodal, gaussian[::-1] * 1.5], axis=1)
    batched = fn(columns).numpy()
    assert batched.shape == (3,)
    assert batched == pytest.approx([float(fn(columns[:, k])) for k in range(3)], rel=1e-12)
    assert univariate.sliced(name, torch.from_numpy(columns), torch.eye(3, dtype=torch.float64)).item() == \
        pytest.approx(batched.mean(), rel=1e-10)


# Upper 5% points under N(0, 1): chi-square(2), chi-square(4), and the asymptotic tables of Stephens (1974)
GAUSSIAN_95 = {"vcreg": 5.99, "extended_jarque_bera": 9.49, "cramer_von_mises": 0.461, "watson": 0.187,
               "anderson_darling": 2.492}


@pytest.mark.parametrize("name", list(univariate.STATISTICS))
def test_small_for_a_gaussian_sample_large_for_a_bimodal_one(name, gaussian, bimodal):
    fn = univariate.statistic(name)
    small, large = float(fn(gaussian)), float(fn(bimodal))
    assert small < GAUSSIAN_95.get(name, 1.0)
    assert large > 20 * small and large > 10


@pytest.mark.parametrize("name", list(univariate.STATISTICS))
def test_every_statistic_is_differentiable_in_the_samples(name):
    x = torch.randn(24, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: univariate.statistic(name)(v), (x,))


def test_bad_input_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(N, K\)"):
        univariate.cramer_von_mises(np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="at least 4 samples"):
        univariate.watson([0.1, 0.2, 0.3])
    with pytest.raises(KeyError, match="known: vcreg"):
        univariate.statistic("kolmogorov")
    with pytest.raises(ValueError, match=r"\(N, D\) and directions \(D, M\)"):
        univariate.sliced("vcreg", torch.zeros(8, 3), torch.zeros(4, 2))
