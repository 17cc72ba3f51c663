"""The CPU half of LeJEPA's multi-crop views (arXiv 2511.08544) for datasets of images of any size: decode,
random-resized crops with horizontal flips, straight to uint8 at each view's output size. Everything
photometric is left to lejepa/photometric.py, per batch on the training device; this side only draws
its parameters.

One call makes one image's views from torch's global generator, which lejepa.data.sampling.ViewDataset
seeds from (seed, epoch, index): an image's crops and photometric draws depend on its key alone, not on
the batch, the data-loader worker or the number of ranks, so a resumed run sees the same views.

Crop boxes follow torchvision's RandomResizedCrop (Inception-style): up to ten tries of an area fraction
in `scale` and a log-uniform aspect ratio in `ratio` whose box fits the image, else the central box of the
image clamped to the ratio range. The ten tries are drawn at once and the first fitting one is taken.
Resizing is bilinear with antialiasing, on uint8 with torch's native uint8 kernel (what torchvision's
resize calls on the CPU), as the per-image path does.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lejepa.photometric import NUM_PARAMS, params_from_uniforms
from lejepa.spec import ViewSpec
from lejepa.views import view_sizes

CROP_TRIES = 10  # as torchvision's RandomResizedCrop
_DRAWS = 2 * CROP_TRIES + 3 + NUM_PARAMS  # per view: tries (area, ratio), position (x, y), flip, photometry


def as_uint8_chw(image) -> torch.Tensor:
    """A PIL image, an H x W x 3 uint8 array or a C x H x W uint8 tensor (C = 1 or 3) as a 3 x H x W uint8
    tensor. PIL and array images keep their H x W x 3 memory (channels-last strides), which is what torch's
    uint8 resize kernel reads fastest."""
    if isinstance(image, Image.Image):
        image = np.array(image.convert("RGB") if image.mode != "RGB" else image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected an H x W x 3 uint8 array, got {image.dtype} {image.shape}")
        return torch.from_numpy(image).permute(2, 0, 1)
    if isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and image.ndim == 3 and image.shape[0] in (1, 3):
        return image.expand(3, -1, -1)
    raise TypeError(
        f"expected a PIL image, an H x W x 3 uint8 array or a 3 x H x W uint8 tensor, got {type(image).__name__} "
        f"{getattr(image, 'dtype', '')} {tuple(getattr(image, 'shape', ()))}"
    )


def crop_boxes(height: int, width: int, uniforms: np.ndarray, scales: np.ndarray, ratio) -> np.ndarray:
    """(top, left, h, w) of one random-resized crop per row of `uniforms` (rows: views).

    uniforms: (V, 2 * CROP_TRIES + 2) draws in [0, 1): CROP_TRIES area draws, CROP_TRIES ratio draws, then
    the position; scales: (V, 2) area-fraction ranges."""
    tries = slice(0, CROP_TRIES)
    area = height * width * (scales[:, :1] + (scales[:, 1:] - scales[:, :1]) * uniforms[:, tries])
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    aspect = np.exp(log_low + (log_high - log_low) * uniforms[:, CROP_TRIES : 2 * CROP_TRIES])
    w = np.rint(np.sqrt(area * aspect)).astype(np.int64)
    h = np.rint(np.sqrt(area / aspect)).astype(np.int64)
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.argmax(1)  # the first try that fits (0 where none does; handled below)
    rows = np.arange(len(uniforms))
    w, h, found = w[rows, first], h[rows, first], fits[rows, first]
    # No try fits: the whole image, cut to the nearest allowed aspect ratio, centred.
    image_ratio = width / height
    fallback_w = np.full(len(rows), width)
    fallback_h = np.full(len(rows), height)
    if image_ratio < min(ratio):
        fallback_h = np.full(len(rows), round(width / min(ratio)))
    elif image_ratio > max(ratio):
        fallback_w = np.full(len(rows), round(height * max(ratio)))
    w, h = np.where(found, w, fallback_w), np.where(found, h, fallback_h)
    position = uniforms[:, 2 * CROP_TRIES : 2 * CROP_TRIES + 2]
    top = np.where(found, np.floor(position[:, 0] * (height - h + 1)), (height - h) // 2).astype(np.int64)
    left = np.where(found, np.floor(position[:, 1] * (width - w + 1)), (width - w) // 2).astype(np.int64)
    return np.stack([top, left, h, w], axis=1)


class CropViews:
    """image -> ([global_1..global_G, local_1..local_L] uint8 (3, size, size), photometric draws (V, NUM_PARAMS))."""

    def __init__(self, views: ViewSpec, image_size: int):
        global_size, local_size = view_sizes(views, image_size)
        self.views = views
        self.sizes = [global_size] * views.global_views + [local_size] * views.local_views
        self.scales = np.array([views.global_scale] * views.global_views + [views.local_scale] * views.local_views,
                               dtype=np.float64).reshape(-1, 2)
        self.ratio = tuple(views.ratio)

    def draw(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """One image's random draws from torch's global generator: crop boxes (V, 4) as (top, left, h, w),
        horizontal flips (V,) and photometric parameters (V, NUM_PARAMS)."""
        uniforms = torch.rand(len(self.sizes), _DRAWS, dtype=torch.float64)
        u = uniforms.numpy()
        boxes = crop_boxes(height, width, u[:, : 2 * CROP_TRIES + 2], self.scales, self.ratio)
        flips = u[:, 2 * CROP_TRIES + 2] < 0.5
        return boxes, flips, params_from_uniforms(uniforms[:, 2 * CROP_TRIES + 3 :], self.views)

    def __call__(self, image) -> tuple[list[torch.Tensor], torch.Tensor]:
        pixels = as_uint8_chw(image)
        boxes, flips, params = self.draw(*pixels.shape[-2:])
        crops = []
        for (top, left, h, w), size, flip in zip(boxes.tolist(), self.sizes, flips.tolist()):
            # Channels-last input is what torch's uint8 antialiased kernel reads without repacking.
            region = pixels[None, :, top : top + h, left : left + w].contiguous(memory_format=torch.channels_last)
            crop = F.interpolate(region, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
            # Left channels-last: the loader's collate copies the crops into one batch tensor anyway.
            crops.append(crop.flip(-1) if flip else crop)
        return crops, params
