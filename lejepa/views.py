"""Multi-crop views with torchvision.transforms.v2 (official README "GOTO hyperparameters"; docs/recipes.md
section 1).

Every view gets the same colour/geometry augmentations; global and local views differ only in crop
size and scale. Sizes not given in the spec scale with the image: the official README's 224/98 px at
224 px (the paper says 96 px local crops) become 28/12 px at 28 px.
"""

from __future__ import annotations

import math

import torch
from torchvision.ops import roi_align
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
        v2.RandomResizedCrop(size, scale=tuple(scale), ratio=tuple(views.ratio), antialias=True),
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


# --- Batched views: the same augmentations, drawn per image but applied to a whole uint8 batch at once.
# For in-memory datasets of fixed-size images (Fashion-MNIST, digits, CIFAR-style arrays) this removes the
# per-image Python overhead that otherwise dominates a CPU step, and runs on the GPU when training does.
# Differences from the per-image path, all deliberate and small: RandomResizedCrop clamps an oversized
# box instead of re-drawing it; colour jitter applies brightness, contrast, saturation, hue in that fixed
# order; hue is a rotation of the chroma plane in YIQ space rather than a shift in HSV. Crops are
# bilinear with roi_align's adaptive sampling (ceil(crop / output) points per pixel), which averages
# when shrinking, in place of antialiased resizing.

_GRAY = (0.299, 0.587, 0.114)


def _crop_boxes(n: int, height: int, width: int, scale, ratio, generator) -> torch.Tensor:
    area = height * width * torch.empty(n).uniform_(*scale, generator=generator)
    log_ratio = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    w = (area * log_ratio.exp()).sqrt().clamp(1, width)
    h = (area / log_ratio.exp()).sqrt().clamp(1, height)
    x1 = torch.rand(n, generator=generator) * (width - w)
    y1 = torch.rand(n, generator=generator) * (height - h)
    return torch.stack([torch.arange(n, dtype=torch.float32), x1, y1, x1 + w, y1 + h], dim=1)


def _per_image(values: torch.Tensor, device) -> torch.Tensor:
    return values.to(device).view(-1, 1, 1, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (x * torch.tensor(_GRAY, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _rotate_hue(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device)
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, x)
    angle = 2 * math.pi * turns.view(-1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], i * angle.cos() - q * angle.sin(), i * angle.sin() + q * angle.cos()], dim=1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_yiq), yiq)


def _blur(x: torch.Tensor, sigma: torch.Tensor, kernel: int) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per image (a grouped convolution over image x channel)."""
    b, c, h, w = x.shape
    offsets = torch.arange(kernel, device=x.device, dtype=x.dtype) - kernel // 2
    weights = torch.exp(-0.5 * (offsets / sigma.view(-1, 1)) ** 2)
    weights = (weights / weights.sum(1, keepdim=True)).repeat_interleave(c, dim=0)  # (b*c, k)
    flat = torch.nn.functional.pad(x.reshape(1, b * c, h, w), [kernel // 2] * 4, mode="reflect")
    flat = torch.nn.functional.conv2d(flat, weights.view(b * c, 1, 1, kernel), groups=b * c)
    flat = torch.nn.functional.conv2d(flat, weights.view(b * c, 1, kernel, 1), groups=b * c)
    return flat.view(b, c, h, w)


class BatchedMultiCropViews:
    """uint8 batch (B, 3, H, W) -> [global_1..global_G, local_1..local_L], each (B, 3, size, size)."""

    def __init__(self, views: ViewSpec, image_size: int, mean, std, seed: int):
        self.spec, self.seed = views, seed
        self.global_size, self.local_size = view_sizes(views, image_size)
        self.mean, self.std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)

    def __call__(self, images: torch.Tensor, step: int, rank: int = 0, world_size: int = 1) -> list[torch.Tensor]:
        """`images` is shard `rank` of the step's global batch, split evenly over `world_size` ranks. Every
        rank draws the whole global batch's parameters from (seed, step) and keeps its shard's, so an image's
        views depend on its place in the global batch, not on how many ranks share it."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of the {world_size} ranks")
        generator = torch.Generator().manual_seed(hash((self.seed, step)) % 2**63)
        shard = slice(rank * len(images), (rank + 1) * len(images))
        x = images.float() / 255
        sizes = [(self.global_size, self.spec.global_scale)] * self.spec.global_views
        sizes += [(self.local_size, self.spec.local_scale)] * self.spec.local_views
        return [self._view(x, size, scale, generator, shard, world_size) for size, scale in sizes]

    def _view(self, x: torch.Tensor, size: int, scale, generator, shard: slice, world_size: int) -> torch.Tensor:
        n, device, spec = len(x) * world_size, x.device, self.spec  # n: draws for the global batch

        def chance(p: float) -> torch.Tensor:
            return _per_image((torch.rand(n, generator=generator) < p)[shard], device)

        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.empty(n).uniform_(low, high, generator=generator)[shard]

        boxes = _crop_boxes(n, x.shape[-2], x.shape[-1], scale, spec.ratio, generator)[shard]
        boxes[:, 0] -= shard.start  # roi_align's image index, within this shard
        boxes = boxes.to(device)
        v = roi_align(x, boxes, output_size=size, spatial_scale=1.0, sampling_ratio=0, aligned=True)
        v = torch.where(chance(0.5), v.flip(-1), v)
        jitter = chance(spec.color_jitter)
        brightness, contrast = _per_image(uniform(0.6, 1.4), device), _per_image(uniform(0.6, 1.4), device)
        saturation, hue = _per_image(uniform(0.8, 1.2), device), uniform(-0.1, 0.1).to(device)
        j = (v * brightness).clamp(0, 1)
        j = ((j - _gray(j).mean((2, 3), keepdim=True)) * contrast + _gray(j).mean((2, 3), keepdim=True)).clamp(0, 1)
        j = ((j - _gray(j)) * saturation + _gray(j)).clamp(0, 1)
        j = _rotate_hue(j, hue).clamp(0, 1)
        v = torch.where(jitter, j, v)
        v = torch.where(chance(spec.grayscale), _gray(v).expand_as(v), v)
        sigma = uniform(0.1, 2.0).to(device)
        v = torch.where(chance(spec.blur), _blur(v, sigma, max(3, (size // 10) | 1)), v)
        v = torch.where(chance(spec.solarize) & (v >= 128 / 255), 1 - v, v)
        return (v - self.mean.to(device)) / self.std.to(device)


def supports_batched_views(dataset) -> bool:
    """In-memory datasets of equal-size uint8 images (they expose an `images` tensor) use the batched path."""
    return isinstance(getattr(dataset, "images", None), torch.Tensor)
