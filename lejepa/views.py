"""Multi-crop views (DESIGN.md section 3) with torchvision.transforms.v2.

Every view gets the same colour/geometry augmentations; global and local views differ only in crop
size and scale. Sizes not given in the spec scale with the image: the paper's 224/98 px at 224 px
become 28/12 px at 28 px.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from lejepa.spec import ViewSpec


def view_sizes(views: ViewSpec, image_size: int) -> tuple[int, int]:
    global_size = views.global_size or image_size
    local_size = views.local_size or max(8, round(image_size * 98 / 224))
    return global_size, local_size


def _augmentation(views: ViewSpec, size: int, scale: tuple[float, float], mean, std) -> v2.Compose:
    blur_kernel = max(3, (size // 10) | 1)  # odd, about 10% of the crop as in SimCLR/DINO
    return v2.Compose([
        v2.ToImage(),
        v2.RGB(),
        v2.RandomResizedCrop(size, scale=tuple(scale), antialias=True),
        v2.RandomHorizontalFlip(0.5),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=views.color_jitter),
        v2.RandomGrayscale(views.grayscale),
        v2.RandomApply([v2.GaussianBlur(blur_kernel, sigma=(0.1, 2.0))], p=views.blur),
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
