"""The photometric half of LeJEPA's multi-crop views (arXiv 2511.08544; the DINO/BYOL augmentation
recipe), applied to whole batches on the training device with a different random draw per image.

Colour jitter (brightness, contrast, saturation, hue with the paper's strengths 0.4, 0.4, 0.2, 0.1),
grayscale, Gaussian blur (sigma 0.1-2, kernel about 10% of the view) and solarisation, then
normalisation. Each image's draws arrive as one row of a (n, NUM_PARAMS) tensor, so the same code serves
draws made per image on the CPU (lejepa/crops.py, keyed by (seed, epoch, index)) and draws made per batch
(lejepa/views.py's in-memory path, keyed by (seed, step)).

Differences from torchvision's per-image ColorJitter, all deliberate and small: the four jitter
operations run in a fixed order (brightness, contrast, saturation, hue) instead of a random one, and hue
is a rotation of the chroma plane in YIQ space instead of a shift in HSV.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lejepa.spec import ViewSpec

# Columns of a parameter row. Flags are 0 or 1; the others are the drawn strengths.
PARAMS = ("jitter", "brightness", "contrast", "saturation", "hue", "grayscale", "blur", "sigma", "solarize")
NUM_PARAMS = len(PARAMS)
_COLUMN = {name: i for i, name in enumerate(PARAMS)}
# The paper's (and SimCLR's, DINO's, VICReg's) colour-jitter strengths, as ColorJitter(0.4, 0.4, 0.2, 0.1):
# the recipe of every method in the suite today (Method.VIEW_RECIPE), and what views built outside a
# method (tests, benchmarks) use when views.jitter_strengths is null.
PAPER_JITTER = (0.4, 0.4, 0.2, 0.1)


def jitter_strengths(views: ViewSpec) -> tuple[float, float, float, float]:
    return tuple(views.jitter_strengths) if views.jitter_strengths is not None else PAPER_JITTER


def jitter_ranges(views: ViewSpec) -> dict[str, tuple[float, float]]:
    """Each jitter strength as the range its factor is drawn from (hue: of the rotation, in turns), as
    ColorJitter does: brightness b -> [1 - b, 1 + b], ..., hue h -> [-h, h]."""
    brightness, contrast, saturation, hue = jitter_strengths(views)
    return {"brightness": (1 - brightness, 1 + brightness), "contrast": (1 - contrast, 1 + contrast),
            "saturation": (1 - saturation, 1 + saturation), "hue": (-hue, hue)}
SIGMA_RANGE = (0.1, 2.0)  # Gaussian blur's standard deviation in pixels, as SimCLR/DINO draw it
SOLARIZE_THRESHOLD = 128 / 255

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale
_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64)
_FROM_YIQ = torch.linalg.inv(_TO_YIQ)
# Constants are copied to each device once: a copy from pageable host memory every batch can make the
# host wait for the device.
_CONSTANTS: dict[torch.device, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(luma weights (1, 3, 1, 1), RGB -> YIQ, YIQ -> RGB) on `device`."""
    if device not in _CONSTANTS:
        gray = torch.tensor(_GRAY, dtype=torch.float32).view(1, 3, 1, 1)
        _CONSTANTS[device] = (gray.to(device), _TO_YIQ.to(device), _FROM_YIQ.to(device))
    return _CONSTANTS[device]


class Normalisation:
    """Per-channel mean and std (as the dataset registry gives them), copied to each device once."""

    def __init__(self, mean, std):
        self.mean, self.std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        self._copies: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._copies:
            self._copies[device] = (self.mean.to(device), self.std.to(device))
        return self._copies[device]


def blur_kernel_size(size: int) -> int:
    """Odd, about 10% of the view's side (23 taps at 224 px, 9 at 98 px), as SimCLR and DINO."""
    return max(3, (size // 10) | 1)


def params_from_uniforms(uniforms: torch.Tensor, views: ViewSpec) -> torch.Tensor:
    """Map (n, NUM_PARAMS) uniform draws in [0, 1) to parameter rows: flags where a draw falls below the
    spec's probability, strengths spread over their ranges."""
    if uniforms.shape[-1] != NUM_PARAMS:
        raise ValueError(f"expected {NUM_PARAMS} uniform draws per view, got {uniforms.shape[-1]}")
    u = uniforms.unbind(-1)
    columns = {
        "jitter": u[_COLUMN["jitter"]] < views.color_jitter,
        "grayscale": u[_COLUMN["grayscale"]] < views.grayscale,
        "blur": u[_COLUMN["blur"]] < views.blur,
        "solarize": u[_COLUMN["solarize"]] < views.solarize,
        "sigma": SIGMA_RANGE[0] + (SIGMA_RANGE[1] - SIGMA_RANGE[0]) * u[_COLUMN["sigma"]],
    }
    for name, (low, high) in jitter_ranges(views).items():
        columns[name] = low + (high - low) * u[_COLUMN[name]]
    return torch.stack([columns[name].to(torch.float32) for name in PARAMS], dim=-1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (x * _constants(x.device)[0]).sum(1, keepdim=True)


def _hue_matrices(turns: torch.Tensor) -> torch.Tensor:
    """(n, 3, 3) RGB -> RGB: to YIQ, rotate (I, Q) by `turns` of a full circle, back to RGB."""
    angle = 2 * math.pi * turns.double()
    cos, sin, zero, one = angle.cos(), angle.sin(), torch.zeros_like(angle), torch.ones_like(angle)
    rotation = torch.stack([one, zero, zero, zero, cos, -sin, zero, sin, cos], dim=-1).view(-1, 3, 3)
    _, to_yiq, from_yiq = _constants(turns.device)
    return (from_yiq @ rotation @ to_yiq).to(torch.float32)


def separable_gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel: int) -> torch.Tensor:
    """Gaussian blur of a float batch (n, c, h, w) with one sigma per image, as two 1-D passes (2k
    multiply-adds a pixel instead of the k^2 of a 2-D kernel), reflect padding as torchvision's."""
    n, c, h, w = x.shape
    offsets = torch.arange(kernel, device=x.device, dtype=x.dtype) - kernel // 2
    weights = torch.exp(-0.5 * (offsets / sigma.to(x.dtype).view(-1, 1)) ** 2)
    weights = (weights / weights.sum(1, keepdim=True)).repeat_interleave(c, dim=0)  # (n*c, k)
    flat = F.pad(x.reshape(1, n * c, h, w), [kernel // 2] * 4, mode="reflect")
    flat = F.conv2d(flat, weights.view(n * c, 1, 1, kernel), groups=n * c)
    flat = F.conv2d(flat, weights.view(n * c, 1, kernel, 1), groups=n * c)
    return flat.view(n, c, h, w)


def apply_photometric(x: torch.Tensor, params: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Jitter, grayscale, blur, solarise and normalise a batch of views of one size.

    `x` is uint8 (0-255) or float (0-1), (n, 3, s, s); `params` is (n, NUM_PARAMS) and `mean` and `std`
    are (3,) tensors, all on x's device (Normalisation.on). Returns normalised float32. Every image goes
    through every operation and keeps its result or not by its flag: no data-dependent branching, so
    nothing waits for the host.
    """
    if x.dtype == torch.uint8:
        x = x.float().div_(255)
    column = {name: params[:, i].view(-1, 1, 1, 1) for i, name in enumerate(PARAMS)}

    def on(name: str) -> torch.Tensor:
        return column[name] > 0.5

    j = (x * column["brightness"]).clamp(0, 1)
    j = ((j - _gray(j).mean((2, 3), keepdim=True)) * column["contrast"] + _gray(j).mean((2, 3), keepdim=True))
    j = j.clamp(0, 1)
    j = ((j - _gray(j)) * column["saturation"] + _gray(j)).clamp(0, 1)
    j = torch.einsum("nij,njhw->nihw", _hue_matrices(params[:, _COLUMN["hue"]]), j).clamp(0, 1)
    x = torch.where(on("jitter"), j, x)
    x = torch.where(on("grayscale"), _gray(x).expand_as(x), x)
    blurred = separable_gaussian_blur(x, params[:, _COLUMN["sigma"]], blur_kernel_size(x.shape[-1]))
    x = torch.where(on("blur"), blurred, x)
    x = torch.where(on("solarize") & (x >= SOLARIZE_THRESHOLD), 1 - x, x)
    return (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


class RandomSeparableBlur:
    """Per-image (CPU) Gaussian blur with probability p and sigma drawn from SIGMA_RANGE, as torchvision's
    RandomApply([GaussianBlur(kernel, sigma)]) but separable: at 224 px its 23-tap 2-D kernel costs 529
    multiply-adds a pixel, the two 1-D passes 46. Draws from torch's global generator (seeded per image
    by lejepa.data.sampling.ViewDataset); uint8 input is rounded back to uint8 as torchvision does."""

    def __init__(self, p: float, kernel: int):
        self.p, self.kernel = p, kernel

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(1).item() >= self.p:
            return image
        sigma = torch.empty(1).uniform_(*SIGMA_RANGE)
        x = image.float() if image.dtype == torch.uint8 else image
        blurred = separable_gaussian_blur(x.reshape(1, -1, *x.shape[-2:]), sigma, self.kernel).view_as(x)
        if image.dtype == torch.uint8:
            blurred = blurred.round_().clamp_(0, 255).to(torch.uint8)
        return torch.Tensor.as_subclass(blurred, type(image)) if type(image) is not torch.Tensor else blurred
