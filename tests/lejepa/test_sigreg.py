"""SIGReg (docs/sigreg.md) against the integral it approximates, the Gaussian's closed form, the
term-by-term reference `epps_pulley_direct`, and its own promises (directions, gradients, shapes)."""

import math

import numpy as np
import pytest
import torch

import lejepa.sigreg as sigreg_module
from lejepa.sigreg import SIGReg, epps_pulley_direct, quadrature, random_directions, sigreg


def _gaussian_window_integral(x: np.ndarray, t_max: float = 3.0, points: int = 4001) -> np.ndarray:
    """N * integral_{-t_max}^{t_max} |ecf_N(t) - phi(t)|^2 phi(t) dt per column of x (N, K), in float64 on a
    fine grid, written independently of lejepa.sigreg (complex exponentials, both signs of t)."""
    t = np.linspace(-t_max, t_max, points)
    phi = np.exp(-0.5 * t**2)
    ecf = np.exp(1j * t[:, None, None] * x[None]).mean(axis=1)  # (points, K)
    integrand = np.abs(ecf - phi[:, None]) ** 2 * phi[:, None]
    return x.shape[0] * np.trapezoid(integrand, t, axis=0)


def _value_and_grad(fn, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = z.detach().clone().requires_grad_(True)
    value = fn(z)
    value.backward()
    return value.detach(), z.grad


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few slices, so that the chunk loops (and a ragged last chunk) are what gets tested."""
    monkeypatch.setitem(sigreg_module.CHUNK_ELEMENTS, "cpu", 3 * 40)


# --- the integral ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gaussian", "shifted", "wide", "narrow", "uniform"])
def test_matches_a_fine_grid_float64_integral_to_quadrature_accuracy(kind):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 8, generator=g, dtype=torch.float64)
    x = {"gaussian": x, "shifted": x + 1, "wide": 2 * x, "narrow": 0.5 * x,
         "uniform": torch.rand(256, 8, generator=g, dtype=torch.float64) * 3.4 - 1.7}[kind]
    exact = _gaussian_window_integral(x.numpy())
    identity = torch.eye(8, dtype=torch.float64)  # directions = coordinate axes: the slices are x's columns
    errors = {}
    for knots in (17, 65, 257):
        per_slice = [sigreg(x[:, k : k + 1], identity[k : k + 1, k : k + 1], knots=knots).item() for k in range(8)]
        errors[knots] = np.max(np.abs(np.array(per_slice) - exact) / exact)
    assert errors[17] < 3e-3  # the paper's 17 knots: within a few 1e-3 of the integral
    assert errors[257] < 2e-5
    # the trapezoid rule's error falls as dt^2: 4x the knots, about 16x less error
    assert errors[17] / errors[65] > 10 and errors[65] / errors[257] > 10


def test_float32_statistic_matches_the_float64_integral():
    x = torch.randn(512, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1.5
    exact = _gaussian_window_integral(x.numpy()).mean()
    dense = sigreg(x.float(), torch.eye(4), knots=1025)
    assert dense.dtype == torch.float32
    assert abs(dense.item() - exact) / exact < 1e-5


# --- the Gaussian's closed form ----------------------------------------------------------------------------


def test_gaussian_expectation_is_the_closed_form_and_does_not_grow_with_n():
    # For x ~ N(0, 1) i.i.d., E|ecf_N(t) - phi(t)|^2 = (1 - phi(t)^2) / N, so E[T] = sum_j w_j (1 - exp(-t_j^2))
    # for the quadrature (w_j: trapezoid weight times phi), whatever N is.
    t, weights, _ = quadrature()
    expected = float((weights * (1 - torch.exp(-(t**2)))).sum())
    truncated = math.sqrt(2 * math.pi) * math.erf(3 / math.sqrt(2)) - math.sqrt(2 * math.pi / 3) * math.erf(
        3 * math.sqrt(1.5)
    )  # integral over [-3, 3] of (1 - e^{-t^2}) e^{-t^2/2}
    whole_line = math.sqrt(2 * math.pi) - math.sqrt(2 * math.pi / 3)
    assert abs(expected - truncated) < 5e-4  # 17 knots integrate it to quadrature accuracy
    assert truncated < whole_line and abs(whole_line - 1.0594) < 1e-4

    g = torch.Generator().manual_seed(3)
    dim = 256  # identity directions: 256 independent slices per view
    means = {}
    for n, views, repeats in ((16, 32, 8), (256, 16, 4), (2048, 2, 4)):
        estimates = []
        for _ in range(repeats):  # independent batches, their spread gives the standard error
            z = torch.randn(views, n, dim, generator=g)
            estimates.append(sigreg(z, torch.eye(dim)).item())
        estimates = np.array(estimates)
        means[n] = estimates.mean()
        # about 4 standard errors (one slice's T has a standard deviation of about 0.95)
        tolerance = 4 * 0.95 / math.sqrt(views * dim * repeats)
        assert abs(means[n] - expected) < tolerance, (n, means[n], expected, tolerance)
    assert abs(means[2048] - means[16]) < 0.05  # no growth with N (an N^2 or missing-N bug fails here)


def test_non_gaussian_inputs_give_a_large_value():
    g = torch.Generator().manual_seed(4)
    n, dim = 512, 64
    directions = random_directions(dim, 256, seed=0, step=0)
    gaussian = sigreg(torch.randn(n, dim, generator=g), directions).item()
    unit_rank4 = torch.randn(n, 4, generator=g) @ torch.randn(4, dim, generator=g) / 2  # unit variance per coordinate
    inputs = {
        "collapsed": torch.randn(1, dim, generator=g).expand(n, dim),
        "shifted": torch.randn(n, dim, generator=g) + 0.5,
        "scaled up": 2 * torch.randn(n, dim, generator=g),
        "scaled down": 0.5 * torch.randn(n, dim, generator=g),
        "low rank": unit_rank4,
    }
    assert 0.8 < gaussian < 1.3
    for name, z in inputs.items():
        assert sigreg(z, directions).item() > 10 * gaussian, name
    # Anisotropy at about the right total variance shows less: a random slice mixes all coordinates, so its
    # variance is near the average one. It still stands well out of the Gaussian's noise.
    anisotropic = torch.randn(n, dim, generator=g) * torch.linspace(0.2, 1.8, dim)
    assert sigreg(anisotropic, directions).item() > 3 * gaussian
    # a larger batch makes a collapse more significant: T grows linearly in N for a non-Gaussian input
    collapsed_small = sigreg(inputs["collapsed"][: n // 4], directions).item()
    assert sigreg(inputs["collapsed"], directions).item() == pytest.approx(4 * collapsed_small, rel=1e-5)


def test_gradient_at_zero_is_finite():
    t, weights, _ = quadrature()
    n = 32
    value, grad = _value_and_grad(lambda z: sigreg(z, random_directions(16, 64, 0, 0)), torch.zeros(n, 16))
    # Z = 0: every ecf is 1, so T = N * sum_j w_j (1 - phi_j)^2 on every slice
    assert value.item() == pytest.approx(n * float((weights * (1 - torch.exp(-0.5 * t**2)) ** 2).sum()), rel=1e-6)
    assert torch.isfinite(grad).all()
    # through a layer, as in training: the weights get a finite gradient too
    layer = torch.nn.Linear(8, 16)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    sigreg(layer(torch.randn(n, 8)), random_directions(16, 64, 0, 0)).backward()
    assert torch.isfinite(layer.weight.grad).all() and torch.isfinite(layer.bias.grad).all()


# --- directions ------------------------------------------------------------------------------------------


def test_directions_are_unit_and_a_function_of_seed_and_step():
    a = random_directions(32, 100, seed=7, step=11)
    assert a.shape == (32, 100)
    assert torch.allclose(a.norm(dim=0), torch.ones(100), atol=1e-6)
    assert torch.equal(a, random_directions(32, 100, seed=7, step=11))  # every rank draws these
    assert not torch.allclose(a, random_directions(32, 100, seed=7, step=12))
    assert not torch.allclose(a, random_directions(32, 100, seed=8, step=11))

    module = SIGReg(num_slices=128, seed=7)
    z = torch.randn(64, 32, generator=torch.Generator().manual_seed(5)) * 1.5
    assert module(z, step=3).item() == module(z, step=3).item()
    assert SIGReg(num_slices=128, seed=7)(z, step=3).item() == module(z, step=3).item()  # no hidden state
    assert module(z, step=3).item() != module(z, step=4).item()
    assert module(z, step=3).item() == sigreg(z, random_directions(32, 128, seed=7, step=3)).item()


# --- the fast path against the definition -------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
def test_fast_path_equals_the_direct_reference_to_float32_rounding(chunked, request):
    if chunked:
        request.getfixturevalue("small_chunks")
    g = torch.Generator().manual_seed(6)
    z64 = torch.randn(300, 24, generator=g, dtype=torch.float64) * 1.3 + 0.2
    directions = random_directions(24, 37, seed=0, step=1).double()

    def direct(z):
        return epps_pulley_direct(z @ directions.to(z.dtype)).mean()

    def fast(z):
        return sigreg(z, directions.to(z.dtype))

    value64, grad64 = _value_and_grad(direct, z64)
    fast_value64, fast_grad64 = _value_and_grad(fast, z64)
    assert fast_value64.item() == pytest.approx(value64.item(), rel=1e-13)
    assert torch.allclose(fast_grad64, grad64, rtol=0, atol=1e-13 * grad64.abs().max())

    # float32: the fast path is as close to the float64 truth as the direct float32 evaluation is
    value32, grad32 = _value_and_grad(fast, z64.float())
    direct_value32, direct_grad32 = _value_and_grad(direct, z64.float())
    scale = grad64.abs().max()
    assert abs(value32.double() - value64) / value64 < 1e-6
    assert abs(direct_value32.double() - value64) / value64 < 1e-6
    assert (grad32.double() - grad64).abs().max() / scale < 2e-6
    assert (grad32 - direct_grad32).abs().max() / scale < 2e-6


@pytest.mark.parametrize("chunked", [False, True])
def test_gradcheck_float64(chunked, request):
    if chunked:
        request.getfixturevalue("small_chunks")
    g = torch.Generator().manual_seed(7)
    z = torch.randn(2, 10, 5, generator=g, dtype=torch.float64, requires_grad=True)
    directions = random_directions(5, 13, seed=1, step=0).double()
    assert torch.autograd.gradcheck(lambda z: sigreg(z, directions, knots=9), (z,))
    assert torch.autograd.gradcheck(lambda x: epps_pulley_direct(x, knots=9).sum(), (z,))


# --- shapes and precision ---------------------------------------------------------------------------------


def test_views_share_directions_and_their_statistics_are_averaged(small_chunks):
    g = torch.Generator().manual_seed(8)
    z = torch.randn(3, 40, 16, generator=g) * torch.tensor([1.0, 1.5, 0.7]).view(3, 1, 1)
    directions = random_directions(16, 50, seed=2, step=5)
    value, grad = _value_and_grad(lambda z: sigreg(z, directions), z)
    per_view = [_value_and_grad(lambda v: sigreg(v, directions) / 3, z[i]) for i in range(3)]
    assert value.item() == pytest.approx(sum(v.item() for v, _ in per_view), rel=1e-6)
    assert torch.allclose(grad, torch.stack([g for _, g in per_view]), rtol=1e-5, atol=1e-7)
    # the V x N x D path equals the definition on every view
    reference = epps_pulley_direct(z @ directions).mean()
    assert value.item() == pytest.approx(reference.item(), rel=1e-6)


def test_autocast_still_computes_in_float32():
    z = torch.randn(64, 16, generator=torch.Generator().manual_seed(9))
    directions = random_directions(16, 32, seed=0, step=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = sigreg(z, directions)
    assert value.dtype == torch.float32
    assert value.item() == sigreg(z, directions).item()


def test_too_few_knots_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="at least 2"):
        sigreg(torch.randn(8, 4), torch.eye(4), knots=1)


def test_sigreg_runs_on_the_meta_device_for_shape_checks():
    """Large architectures are shape-checked on the meta device (no memory): SIGReg must not need real data."""
    z = torch.empty(3, 8, 16, device="meta", requires_grad=True)  # V x N x D
    value = SIGReg(num_slices=4)(z, step=0)
    assert value.shape == () and value.device.type == "meta"
    value.backward()
    assert z.grad.shape == z.shape
