"""The device half of the views (lejepa/photometric.py): the blur against torchvision's 2-D Gaussian, each
operation against its definition, per-image parameters that do not depend on the rest of the batch."""

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from lejepa.photometric import (
    NUM_PARAMS,
    PARAMS,
    SIGMA_RANGE,
    RandomSeparableBlur,
    apply_photometric,
    blur_kernel_size,
    params_from_uniforms,
    separable_gaussian_blur,
)
from lejepa.spec import ViewSpec

ZERO, ONE = torch.zeros(3), torch.ones(3)


def _images(n=4, size=32, seed=0):
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _params(n, **values):
    """Rows with every flag off and neutral strengths, then `values` (a number or one per image)."""
    neutral = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0, "sigma": 1.0}
    rows = torch.zeros(n, NUM_PARAMS)
    for name, value in {**neutral, **values}.items():
        rows[:, PARAMS.index(name)] = torch.as_tensor(value, dtype=torch.float32)
    return rows


def test_blur_kernel_is_about_a_tenth_of_the_view():
    assert [blur_kernel_size(s) for s in (224, 98, 28, 12)] == [23, 9, 3, 3]


@pytest.mark.parametrize("kernel, sigma", [(23, 0.1), (23, 1.3), (23, 2.0), (9, 0.7), (3, 2.0)])
def test_separable_blur_equals_torchvision_2d_gaussian(kernel, sigma):
    x = _images(2, 40).float() / 255
    ours = separable_gaussian_blur(x, torch.full((2,), sigma), kernel)
    reference = TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma])
    assert (ours - reference).abs().max() < 4e-6  # float32 rounding of sums of up to 529 terms in [0, 1]


def test_batched_blur_uses_each_images_own_sigma():
    x = _images(3, 30).float() / 255
    sigmas = torch.tensor([0.2, 1.0, 2.0])
    together = separable_gaussian_blur(x, sigmas, 9)
    for i, sigma in enumerate(sigmas.tolist()):
        assert (together[i] - TF.gaussian_blur(x[i], [9, 9], [sigma, sigma])).abs().max() < 4e-6


def test_per_image_blur_on_uint8_matches_torchvision_to_rounding():
    image = _images(1, 64)[0]
    blur = RandomSeparableBlur(p=1.0, kernel=23)
    torch.manual_seed(3)
    ours = blur(image)
    torch.manual_seed(3)
    torch.rand(1)  # the p draw
    sigma = torch.empty(1).uniform_(*SIGMA_RANGE).item()
    reference = TF.gaussian_blur(image, [23, 23], [sigma, sigma])
    assert ours.dtype == torch.uint8 and ours.shape == image.shape
    assert (ours.int() - reference.int()).abs().max() <= 1  # float rounding either side of .5
    assert RandomSeparableBlur(p=0.0, kernel=23)(image) is image


def test_parameters_from_uniform_draws_cover_the_paper_ranges():
    spec = ViewSpec(color_jitter=0.8, grayscale=0.2, blur=0.5, solarize=0.2)
    u = torch.rand(4000, NUM_PARAMS, generator=torch.Generator().manual_seed(0))
    p = params_from_uniforms(u, spec)
    paper = {"brightness": (0.6, 1.4), "contrast": (0.6, 1.4), "saturation": (0.8, 1.2), "hue": (-0.1, 0.1)}
    for name, (low, high) in {**paper, "sigma": SIGMA_RANGE}.items():
        column = p[:, PARAMS.index(name)]
        assert low <= column.min() and column.max() <= high and column.max() - column.min() > 0.95 * (high - low)
    for name, rate in (("jitter", 0.8), ("grayscale", 0.2), ("blur", 0.5), ("solarize", 0.2)):
        column = p[:, PARAMS.index(name)]
        assert set(column.unique().tolist()) <= {0.0, 1.0}
        assert abs(column.mean().item() - rate) < 0.03, name
    with pytest.raises(ValueError, match="expected 9 uniform draws"):
        params_from_uniforms(torch.rand(2, 4), spec)


def test_all_off_is_the_normalised_image():
    images = _images()
    out = apply_photometric(images, _params(4), torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.3]))
    expected = (images.float() / 255 - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    assert out.dtype == torch.float32 and (out - expected).abs().max() < 1e-6


def test_neutral_jitter_is_the_identity_and_each_operation_does_what_it_says():
    x = _images().float() / 255
    neutral = apply_photometric(x, _params(4, jitter=1), ZERO, ONE)
    assert (neutral - x).abs().max() < 1e-5  # hue 0 rotates by nothing; factors 1 change nothing
    bright = apply_photometric(x, _params(4, jitter=1, brightness=1.3), ZERO, ONE)
    assert (bright - (x * 1.3).clamp(0, 1)).abs().max() < 1e-5
    gray = apply_photometric(x, _params(4, grayscale=1), ZERO, ONE)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    assert (gray[:, 0] - (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])).abs().max() < 1e-6
    solar = apply_photometric(x, _params(4, solarize=1), ZERO, ONE)
    assert torch.equal(solar, torch.where(x >= 128 / 255, 1 - x, x))
    desaturated = apply_photometric(x, _params(4, jitter=1, saturation=0.0), ZERO, ONE)
    assert (desaturated - gray).abs().max() < 1e-5  # saturation 0 is the grayscale image


def test_hue_rotation_keeps_luma_and_a_full_turn_is_the_identity():
    x = _images().float() / 255 * 0.5 + 0.25  # away from the clamps
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    rotated = apply_photometric(x, _params(4, jitter=1, hue=0.1), ZERO, ONE)
    assert ((rotated * luma).sum(1) - (x * luma).sum(1)).abs().max() < 1e-5  # Y of YIQ is untouched
    assert (rotated - x).abs().max() > 0.01
    full = apply_photometric(x, _params(4, jitter=1, hue=1.0), ZERO, ONE)
    assert (full - x).abs().max() < 1e-5


def test_each_image_gets_its_own_parameters_whatever_the_batch():
    """An image's output depends on its own row only: alone, or in any batch, the result is the same."""
    images = _images(6, 28)
    u = torch.rand(6, NUM_PARAMS, generator=torch.Generator().manual_seed(1))
    params = params_from_uniforms(u, ViewSpec(color_jitter=0.8, grayscale=0.3, blur=0.7, solarize=0.3))
    together = apply_photometric(images, params, ZERO, ONE)
    for i in range(6):
        alone = apply_photometric(images[i : i + 1], params[i : i + 1], ZERO, ONE)
        assert (together[i] - alone[0]).abs().max() < 1e-6
    reversed_order = apply_photometric(images.flip(0), params.flip(0), ZERO, ONE)
    assert (reversed_order.flip(0) - together).abs().max() < 1e-6
    assert 0 <= together.min() and together.max() <= 1


def test_jitter_strengths_set_the_ranges_of_every_path_and_a_method_owns_its_default():
    """Issue 12: the strengths are a view setting (null: the method's VIEW_RECIPE), read by the batched
    draws, the per-image ColorJitter and the in-memory batched path alike; the manifest's value wins."""
    import dataclasses
    from typing import ClassVar

    from torchvision.transforms import v2

    from lejepa.methods import get_method
    from lejepa.methods.base import Method
    from lejepa.photometric import PAPER_JITTER
    from lejepa.views import _augmentation

    u = torch.rand(2000, NUM_PARAMS, generator=torch.Generator().manual_seed(1))
    still = params_from_uniforms(u, ViewSpec(jitter_strengths=(0.0, 0.0, 0.0, 0.0)))
    for name, value in (("brightness", 1.0), ("contrast", 1.0), ("saturation", 1.0), ("hue", 0.0)):
        assert torch.all(still[:, PARAMS.index(name)] == value), name
    strong = params_from_uniforms(u, ViewSpec(jitter_strengths=(0.8, 0.1, 0.2, 0.3)))
    assert strong[:, PARAMS.index("brightness")].min() < 0.25 and strong[:, PARAMS.index("hue")].max() > 0.28
    assert torch.equal(params_from_uniforms(u, ViewSpec()), params_from_uniforms(u, ViewSpec(jitter_strengths=PAPER_JITTER)))

    jitter = next(t for t in _augmentation(ViewSpec(jitter_strengths=(0.5, 0.3, 0.2, 0.05)), 28, (0.3, 1.0), (0.5,) * 3,
                                           (0.5,) * 3).transforms if isinstance(t, v2.RandomApply)).transforms[0]
    assert (jitter.brightness, jitter.hue) == ((0.5, 1.5), (-0.05, 0.05))

    class Muted(get_method("lejepa")):
        VIEW_RECIPE: ClassVar[dict] = {"jitter_strengths": (0.1, 0.1, 0.1, 0.0)}

    assert Method.views(ViewSpec()).jitter_strengths == PAPER_JITTER  # every method here: the paper's
    assert Muted.views(ViewSpec()).jitter_strengths == (0.1, 0.1, 0.1, 0.0)  # the method's own recipe
    mine = ViewSpec(jitter_strengths=(0.2, 0.2, 0.2, 0.1))
    assert Muted.views(mine) == mine and dataclasses.replace(Muted.views(ViewSpec()), jitter_strengths=None) == ViewSpec()


@pytest.mark.parametrize("strengths", [(0.4, 0.4, 0.2), (1.5, 0.4, 0.2, 0.1), (0.4, 0.4, 0.2, 0.6), (-0.1, 0.4, 0.2, 0.1)])
def test_jitter_strengths_out_of_range_are_refused_by_name(strengths):
    with pytest.raises(ValueError, match="jitter_strengths"):
        ViewSpec(jitter_strengths=strengths)
