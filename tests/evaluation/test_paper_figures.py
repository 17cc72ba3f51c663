"""The paper's theory figures read back from their matplotlib objects (line data, bar heights, scatter
offsets, image arrays, titles) at reduced sizes, each asserting the paper's qualitative result."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from evaluation.paper_figures import (
    fig_descent,
    fig_dimension,
    fig_probes,
    fig_quadrature,
    fig_sketching,
    univariate,
)
from evaluation.paper_figures.samples import half_circle_directions, x_distribution
from lejepa.sigreg import epps_pulley_direct


def number_after(text: str, label: str) -> float:
    return float(re.search(re.escape(label) + r"\s*([-+]?\d+\.?\d*(?:e[-+]?\d+)?)", text).group(1))


def test_fig2_bars_are_the_epps_pulley_of_each_projection():
    drawn = fig_sketching.fig2(samples=800, directions=4)
    bars = drawn.figures.axes[2]
    heights = np.array([p.get_height() for p in bars.patches])
    z = fig_sketching.three_clusters(800, 0)
    gaussian = np.random.default_rng(1).standard_normal((800, 2))
    _, vectors = half_circle_directions(4)
    assert heights[:4] == pytest.approx(univariate.epps_pulley(z @ vectors).numpy(), rel=1e-9)
    assert heights[4:] == pytest.approx(univariate.epps_pulley(gaussian @ vectors).numpy(), rel=1e-9)
    assert heights[:4].min() > 5 * heights[4:].max()  # every direction sees the clusters
    assert number_after(bars.get_title(), "SIGReg =") == pytest.approx(heights[:4].mean(), abs=0.05)
    assert f"{heights[:4].mean():.1f}" in drawn.caption


def test_fig5_every_shape_test_peaks_at_the_arms_and_vcreg_sees_nothing():
    drawn = fig_sketching.fig5(samples=1000)
    lines = drawn.figures.axes[3].get_lines()[:len(univariate.STATISTICS)]
    angles, raw = fig_sketching.directional_statistics(x_distribution(1000, 0), 10)
    for line, name in zip(lines, univariate.STATISTICS):
        x, y = line.get_data()
        assert list(x) == pytest.approx(list(angles))
        assert y == pytest.approx(fig_sketching.min_max(raw[name]))
        label_max = number_after(line.get_label(), "max")
        if name == "vcreg":
            assert label_max < 5.99  # chi-square(2)'s 5% point: mean and variance are exact for the X
            continue
        assert x[np.argmax(y)] in (36, 54, 126, 144)  # the directions next to the arms at 45 and 135 degrees
        assert y[np.isin(x, [0, 90])].max() < 0.2  # along the axes the projections are N(0, 1)
        assert label_max == pytest.approx(raw[name].max(), rel=1e-2)
        assert raw[name].max() > 10 * raw[name][np.isin(angles, [0, 90])].max()
    assert "cannot see the X" in drawn.caption


def boundary_spread(ax) -> tuple[int, float]:
    """How many learned boundaries are drawn, and the circular variance of their directions (modulo pi)."""
    learned = [line for line in ax.get_lines() if line.get_alpha() is not None and line.get_alpha() < 0.5]
    angles = np.array([math.atan2(np.ptp(line.get_ydata()) * np.sign(np.diff(line.get_ydata())[0] *
                                                                       np.diff(line.get_xdata())[0]),
                                  np.ptp(line.get_xdata())) for line in learned])
    return len(learned), 1 - abs(np.exp(2j * angles).mean())


def test_fig3_anisotropic_boundaries_spread_more():
    drawn = fig_probes.fig3(repeats=60)
    iso, aniso = drawn.figures.axes
    (n_iso, spread_iso), (n_aniso, spread_aniso) = boundary_spread(iso), boundary_spread(aniso)
    assert n_iso == n_aniso == 60
    assert spread_aniso > 1.5 * spread_iso
    var_iso, var_aniso = (number_after(ax.get_title(), "Var(β̂) =") for ax in (iso, aniso))
    assert var_aniso > 2 * var_iso


def test_fig3_logistic_fit_recovers_known_weights():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((20000, 2))
    y = (rng.random(20000) < 1 / (1 + np.exp(-(z @ [1.5, -0.5] + 0.3)))).astype(float)
    weights, intercept = fig_probes.fit_logistic(z, y)
    assert weights == pytest.approx([1.5, -0.5], abs=0.06) and intercept == pytest.approx(0.3, abs=0.05)


def test_fig17_anisotropy_raises_the_variance_of_ols_on_every_task():
    drawn = fig_probes.fig17(repeats=200)
    axes = drawn.figures.axes
    for row, task in enumerate(fig_probes.TASKS):
        estimates = [axes[2 * row + col].collections[0].get_offsets() for col in (0, 1)]
        iso, aniso = (fig_probes.total_variance(np.asarray(e)) for e in estimates)
        assert aniso > 2 * iso, task
        # OLS is unbiased for the population coefficient the star marks (Stein's lemma for the smooth task)
        for col, e in enumerate(estimates):
            star = axes[2 * row + col].collections[1].get_offsets()[0]
            mean = np.asarray(e).mean(0)
            if task == "binary":  # unit vectors: their mean is shorter, its direction is the one to compare
                mean = mean / np.linalg.norm(mean)
            assert mean == pytest.approx(star, abs=0.06), (task, col)


def test_fig18_anisotropy_lowers_the_alignment_at_every_tikhonov_strength():
    drawn = fig_probes.fig18(sample_sizes=(50, 200), repeats=20)
    for ax in drawn.figures.axes[2:]:  # the cosine row
        iso, *_, worst = (line.get_ydata() for line in ax.get_lines())
        assert (iso > worst).all()
        assert iso[-1] - worst[-1] > 0.02  # strongest ridge: the anisotropic estimate is biased away
    assert fig_probes.spectrum(16, 50).sum() == pytest.approx(16)


def test_fig4_smoother_densities_are_smoother_on_the_maps():
    drawn = fig_dimension.fig4(alphas=(0.5, 2.0, 6.0), degree=10, rows=31)
    maps = [ax for ax in drawn.figures.axes if ax.images]
    polar, _ = fig_dimension.sphere_grid(31, 61)
    rough = [fig_dimension.roughness(np.log(np.asarray(ax.images[0].get_array())), polar) for ax in maps]
    assert rough[0] > rough[1] > rough[2]
    for ax, value in zip(maps, rough):
        assert number_after(ax.get_title(), "roughness") == pytest.approx(value, abs=0.01)


def test_fig15_is_theorem_5s_factor_and_smoother_falls_faster():
    assert fig_dimension.log_bound(3, 1.0, np.array([1.0]))[0] == pytest.approx(math.log(2 * math.pi))
    drawn = fig_dimension.fig15(alphas=(1, 21, 41), max_directions=100)
    lines = drawn.figures.axes[0].get_lines()[:3]
    m = lines[0].get_xdata()
    for line, alpha in zip(lines, (1, 21, 41)):
        y = line.get_ydata()
        assert y == pytest.approx(fig_dimension.log_bound(5, alpha, m) / math.log(10))
        assert (y[-1] - y[0]) / math.log10(m[-1] / m[0]) == pytest.approx(-2 * alpha / 4)
    final = [line.get_ydata()[-1] for line in lines]
    assert final[0] > final[1] > final[2]


def test_fig6_16_shape_tests_unfold_the_x_and_vcreg_does_not():
    drawn = fig_descent.fig16(samples=100, configs=((8, 16),), steps=300)
    errors = {name: values[0] for name, values in fig_descent.x_errors(drawn.figures).items()}
    start = errors.pop("original")
    assert errors["vcreg"] > 0.9 * start  # mean and variance were already right: nothing to do
    assert errors["epps_pulley"] < 0.6 * errors["vcreg"]  # SIGReg reaches a lower Gaussianity error
    assert all(errors[n] < 0.7 * start for n in errors if n != "vcreg")
    original = drawn.figures.axes[0].collections[0].get_offsets()  # row 1, column 1: the X before descent
    assert np.asarray(original) == pytest.approx(fig_descent.embedded_x(100, 8, 0).numpy()[:, :2])


def test_fig6_descent_is_deterministic():
    z0 = fig_descent.embedded_x(50, 8, 0)
    one = fig_descent.descend(z0, "watson", directions=4, steps=5, lr=0.01, seed=0)
    assert torch.equal(one, fig_descent.descend(z0, "watson", directions=4, steps=5, lr=0.01, seed=0))


def test_fig7_resampled_directions_beat_fixed_ones():
    drawn = fig_dimension.fig7(counts=(4, 16, 64), samples=256, dim=16, steps=100, eval_directions=512)
    fixed, resampled = (line.get_ydata() for line in drawn.figures.axes[0].get_lines())
    assert (resampled < fixed).all()
    assert fixed[0] > 1.5 * resampled[0]  # few directions: redrawing them covers the sphere, fixing them does not
    assert fixed[0] > fixed[1] > fixed[2]  # more fixed directions, lower bound (Theorem 5)


def test_fig20_exact_integral_and_faster_than_quadratic_decay():
    x = np.random.default_rng(0).standard_normal(300)
    dense = float(epps_pulley_direct(torch.from_numpy(x)[:, None], t_max=12.0, knots=4001)[0])
    assert fig_quadrature.exact_epps_pulley(x) == pytest.approx(dense, rel=1e-9)
    drawn = fig_quadrature.fig20(samples=300, max_knots=41)
    for ax in drawn.figures.axes:
        knots, errors = ax.get_lines()[0].get_data()
        slope = fig_quadrature.decay_slope(np.asarray(knots), np.asarray(errors))
        assert slope < -2.5, ax.get_title()
        assert number_after(ax.get_title(), "slope") == pytest.approx(slope, abs=0.05)
        assert errors[-1] < 1e-3 * errors[0]
