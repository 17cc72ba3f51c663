"""Multi-crop views (official README "GOTO hyperparameters"; docs/recipes.md section 1): the per-image path
(torchvision.transforms.v2 on the CPU) and the batched path for in-memory datasets of equal-size images.

Every view gets the same colour/geometry augmentations; global and local views differ only in crop
size and scale. Sizes not given in the spec scale with the image: the official README's 224/98 px at
224 px (the paper says 96 px local crops) become 28/12 px at 28 px. Which path a run uses is
lejepa/view_pipeline.py's choice.
"""

from __future__ import annotations

import math

import torch
from torchvision.ops import roi_align
from torchvision.transforms import v2

from lejepa.photometric import (
    PARAMS,
    SIGMA_RANGE,
    Normalisation,
    RandomSeparableBlur,
    apply_photometric,
    blur_kernel_size,
    jitter_ranges,
    jitter_strengths,
)
from lejepa.seeds import torch_generator
from lejepa.spec import ViewSpec


def view_sizes(views: ViewSpec, image_size: int) -> tuple[int, int]:
    global_size = views.global_size or image_size
    local_size = views.local_size or max(8, round(image_size * 98 / 224))
    return global_size, local_size


def _augmentation(views: ViewSpec, size: int, scale: tuple[float, float], mean, std) -> v2.Compose:
    return v2.Compose([
        v2.ToImage(),
        v2.RGB(),
        v2.RandomResizedCrop(size, scale=tuple(scale), ratio=tuple(views.ratio), antialias=True),
        v2.RandomHorizontalFlip(0.5),
        v2.RandomApply([v2.ColorJitter(*jitter_strengths(views))], p=views.color_jitter),
        v2.RandomGrayscale(views.grayscale),
        RandomSeparableBlur(views.blur, blur_kernel_size(size)),
        v2.RandomSolarize(threshold=128, p=views.solarize),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


def eval_transform(image_size: int, mean, std) -> v2.Compose:
    """No augmentation: resize to the training resolution and normalise (frozen-feature extraction)."""
    return v2.Compose([
        v2.ToImage(),
        v2.RGB(),
        v2.Resize(image_size, antialias=True),
        v2.CenterCrop(image_size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


class MultiCropViews:
    """image -> [global_1..global_G, local_1..local_L] tensors."""

    def __init__(self, views: ViewSpec, image_size: int, mean, std):
        global_size, local_size = view_sizes(views, image_size)
        self.num_global, self.num_local = views.global_views, views.local_views
        self.global_transform = _augmentation(views, global_size, views.global_scale, mean, std)
        self.local_transform = _augmentation(views, local_size, views.local_scale, mean, std)

    def __call__(self, image) -> list[torch.Tensor]:
        return [self.global_transform(image) for _ in range(self.num_global)] + [
            self.local_transform(image) for _ in range(self.num_local)
        ]


# --- Batched views for in-memory datasets of equal-size uint8 images (Fashion-MNIST, digits, CIFAR-style
# arrays): crops and photometry drawn per image but applied to the whole batch at once, on the training
# device. This removes the per-image Python overhead that otherwise dominates a CPU step. Differences from
# the per-image path, all deliberate and small: RandomResizedCrop clamps an oversized box instead of
# re-drawing it; crops are bilinear with roi_align's adaptive sampling (ceil(crop / output) points per
# pixel), which averages when shrinking, in place of antialiased resizing; the photometric differences
# are lejepa/photometric.py's. Datasets of image files use lejepa/crops.py instead (crops on the CPU).


def _crop_boxes(n: int, height: int, width: int, scale, ratio, generator) -> torch.Tensor:
    area = height * width * torch.empty(n).uniform_(*scale, generator=generator)
    log_ratio = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    w = (area * log_ratio.exp()).sqrt().clamp(1, width)
    h = (area / log_ratio.exp()).sqrt().clamp(1, height)
    x1 = torch.rand(n, generator=generator) * (width - w)
    y1 = torch.rand(n, generator=generator) * (height - h)
    return torch.stack([torch.arange(n, dtype=torch.float32), x1, y1, x1 + w, y1 + h], dim=1)


class BatchedMultiCropViews:
    """uint8 batch (B, 3, H, W) -> [global_1..global_G, local_1..local_L], each (B, 3, size, size)."""

    def __init__(self, views: ViewSpec, image_size: int, mean, std, seed: int):
        self.spec, self.seed = views, seed
        self.global_size, self.local_size = view_sizes(views, image_size)
        self.normalisation = Normalisation(mean, std)

    def __call__(self, images: torch.Tensor, step: int, rank: int = 0, world_size: int = 1) -> list[torch.Tensor]:
        """`images` is shard `rank` of the step's global batch, split evenly over `world_size` ranks. Every
        rank draws the whole global batch's parameters from (seed, step) and keeps its shard's, so an image's
        views depend on its place in the global batch, not on how many ranks share it."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of the {world_size} ranks")
        generator = torch_generator(self.seed, step)
        shard = slice(rank * len(images), (rank + 1) * len(images))
        x = images.float() / 255
        sizes = [(self.global_size, self.spec.global_scale)] * self.spec.global_views
        sizes += [(self.local_size, self.spec.local_scale)] * self.spec.local_views
        return [self._view(x, size, scale, generator, shard, world_size) for size, scale in sizes]

    def _view(self, x: torch.Tensor, size: int, scale, generator, shard: slice, world_size: int) -> torch.Tensor:
        n, device, spec = len(x) * world_size, x.device, self.spec  # n: draws for the global batch

        def chance(p: float) -> torch.Tensor:
            return (torch.rand(n, generator=generator) < p)[shard]

        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.empty(n).uniform_(low, high, generator=generator)[shard]

        boxes = _crop_boxes(n, x.shape[-2], x.shape[-1], scale, spec.ratio, generator)[shard]
        boxes[:, 0] -= shard.start  # roi_align's image index, within this shard
        v = roi_align(x, boxes.to(device), output_size=size, spatial_scale=1.0, sampling_ratio=0, aligned=True)
        flip = chance(0.5).to(device).view(-1, 1, 1, 1)
        v = torch.where(flip, v.flip(-1), v)
        # The draws in the order this path has always made them (so a seed gives the views it gave before).
        columns = {"jitter": chance(spec.color_jitter)}
        for name, (low, high) in jitter_ranges(spec).items():
            columns[name] = uniform(low, high)
        columns["grayscale"], columns["sigma"] = chance(spec.grayscale), uniform(*SIGMA_RANGE)
        columns["blur"], columns["solarize"] = chance(spec.blur), chance(spec.solarize)
        params = torch.stack([columns[name].to(torch.float32) for name in PARAMS], dim=1)
        return apply_photometric(v, params.to(device), *self.normalisation.on(device))


def supports_batched_views(dataset) -> bool:
    """In-memory datasets of equal-size uint8 images (they expose an `images` tensor) use the batched path."""
    return isinstance(getattr(dataset, "images", None), torch.Tensor)
