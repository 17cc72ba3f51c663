"""Ways to run the photometric half of the views (colour jitter 0.8 x (0.4, 0.4, 0.2, 0.1), grayscale 0.2,
Gaussian blur 0.5 with sigma 0.1-2 and a kernel of about 10% of the view, solarisation 0.2, normalisation)
on a batch of uint8 crops, each image with its own random draw. Shared by view_pipeline_bench.py (on the
CPU) and gpu_smoke.py (on the GPU), so that the choice of kernels rests on a measurement:

- ours: lejepa.view_pipeline.photometric_views, every operation on the whole batch, per-image parameters
  as tensors (what training uses);
- torchvision: torchvision.transforms.v2 on tensors, one image at a time (a v2 transform draws one set of
  parameters per call, so per-image draws mean a Python loop over the batch);
- kornia: kornia.augmentation on the whole batch with per-sample parameters (only if kornia is installed;
  not a dependency of the suite).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lejepa.photometric import Normalisation, blur_kernel_size
from lejepa.view_pipeline import photometric_views

Candidate = Callable[[list[torch.Tensor], torch.Tensor], list[torch.Tensor]]


def ours(mean, std) -> Candidate:
    normalisation = Normalisation(mean, std)
    return lambda crops, params: photometric_views(crops, params, *normalisation.on(params.device))


def torchvision_per_image(mean, std) -> Candidate:
    from torchvision.transforms import v2

    def compose(size: int):
        kernel = blur_kernel_size(size)
        return v2.Compose([
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            v2.RandomGrayscale(0.2),
            v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5),
            v2.RandomSolarize(threshold=128, p=0.2),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ])

    transforms: dict[int, v2.Compose] = {}

    def apply(crops, params):
        out = []
        for batch in crops:
            transform = transforms.setdefault(batch.shape[-1], compose(batch.shape[-1]))
            out.append(torch.stack([transform(image) for image in batch]))
        return out

    return apply


def kornia_batched(mean, std) -> Candidate | str:
    try:
        import kornia.augmentation as K
    except ImportError:
        return "kornia is not installed (pip install kornia into the benchmark venv)"

    def compose(size: int):
        kernel = blur_kernel_size(size)
        return torch.nn.Sequential(
            K.ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8),
            K.RandomGrayscale(p=0.2),
            K.RandomGaussianBlur((kernel, kernel), (0.1, 2.0), p=0.5),
            K.RandomSolarize(thresholds=0.0, additions=0.0, p=0.2),  # threshold exactly 0.5
            K.Normalize(torch.tensor(mean), torch.tensor(std)),
        )

    modules: dict[tuple[int, torch.device], torch.nn.Module] = {}

    def apply(crops, params):
        out = []
        for batch in crops:
            key = (batch.shape[-1], batch.device)
            module = modules.setdefault(key, compose(batch.shape[-1]).to(batch.device))
            out.append(module(batch.float() / 255))
        return out

    return apply


def candidates(mean, std) -> dict[str, Candidate | str]:
    """name -> candidate, or the reason it cannot run here."""
    return {"ours (batched, per-image draws)": ours(mean, std),
            "torchvision v2 (per image)": torchvision_per_image(mean, std),
            "kornia (batched, per-sample draws)": kornia_batched(mean, std)}
