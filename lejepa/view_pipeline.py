"""Which multi-crop view path a run uses, and how its batches reach the training device.

Three paths make the same kind of views (the paper's multi-crop recipe: global and local crops, colour jitter,
grayscale, blur, solarisation):

- "in_memory": datasets held as one uint8 tensor of equal-size images (Fashion-MNIST, digits, CIFAR-style
  arrays). The loader hands over raw images; crops and photometry are drawn from (seed, step) for the
  global batch and applied per batch on the device (lejepa/views.py, BatchedMultiCropViews).
- "crops": any other dataset (image files, Arrow tables). Loader workers decode and cut uint8 crops at each
  view's output size and draw the photometric parameters, all from (seed, epoch, index)
  (lejepa/crops.py); the device applies the photometry per batch (lejepa/photometric.py). Batches travel
  as uint8, from pinned memory when the device is a GPU.
- "per_image": everything per image on the CPU with torchvision (lejepa/views.py, MultiCropViews);
  chosen only by `views.batched: false`.

Each path is an object with `item_views` (what lejepa.data.sampling.ViewDataset applies to each image in
the loader, None for the raw image), `transfer(batch, device)` (host to device, asynchronous) and
`views(batch, step, rank, world_size)` (the list of normalised float views the method trains on).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from lejepa.crops import CropViews
from lejepa.photometric import Normalisation, apply_photometric
from lejepa.spec import ViewSpec
from lejepa.views import BatchedMultiCropViews, MultiCropViews, supports_batched_views


def _to(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    return tensor.to(device, non_blocking=True)


class InMemoryViews:
    name = "in_memory"
    item_views = None

    def __init__(self, views: ViewSpec, image_size: int, mean, std, seed: int):
        self.batched = BatchedMultiCropViews(views, image_size, mean, std, seed)

    def transfer(self, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
        return _to(batch, device)

    def views(self, batch: torch.Tensor, step: int, rank: int = 0, world_size: int = 1) -> list[torch.Tensor]:
        return self.batched(batch, step, rank, world_size)


class CropBatchViews:
    name = "crops"

    def __init__(self, views: ViewSpec, image_size: int, mean, std):
        self.item_views = CropViews(views, image_size)
        self.normalisation = Normalisation(mean, std)

    def transfer(self, batch, device: torch.device) -> tuple[list[torch.Tensor], torch.Tensor]:
        crops, params = batch
        return [_to(c, device) for c in crops], _to(params, device)

    def views(self, batch, step: int = 0, rank: int = 0, world_size: int = 1) -> list[torch.Tensor]:
        """Every image's draws came with it from the loader, so step, rank and world size change nothing."""
        crops, params = batch
        return photometric_views(crops, params, *self.normalisation.on(params.device))


class PerImageViews:
    name = "per_image"

    def __init__(self, views: ViewSpec, image_size: int, mean, std):
        self.item_views = MultiCropViews(views, image_size, mean, std)

    def transfer(self, batch: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
        return [_to(v, device) for v in batch]

    def views(self, batch: list[torch.Tensor], step: int = 0, rank: int = 0, world_size: int = 1):
        return batch


ViewPipeline = InMemoryViews | CropBatchViews | PerImageViews


def photometric_views(crops: list[torch.Tensor], params: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
    """uint8 crops [V x (B, 3, s_v, s_v)] and their draws (B, V, NUM_PARAMS) -> normalised float views;
    mean and std (3,) on the crops' device. Views of one size go through the photometric kernels as one
    batch (fewer, larger kernel launches)."""
    if params.ndim != 3 or params.shape[:2] != (len(crops[0]), len(crops)):
        raise ValueError(f"expected parameters (batch, {len(crops)} views, n), got {tuple(params.shape)}")
    by_size: dict[tuple[int, int], list[int]] = {}
    for v, crop in enumerate(crops):
        by_size.setdefault(tuple(crop.shape[-2:]), []).append(v)
    out: list[torch.Tensor | None] = [None] * len(crops)
    for members in by_size.values():
        stacked = torch.cat([crops[v] for v in members])
        stacked_params = torch.cat([params[:, v] for v in members])
        for v, view in zip(members, apply_photometric(stacked, stacked_params, mean, std).chunk(len(members))):
            out[v] = view
    return out


def build_view_pipeline(views: ViewSpec, dataset, image_size: int, mean, std, seed: int) -> ViewPipeline:
    """The run's view path: `views.batched` false -> per image on the CPU; otherwise in-memory batches
    where the dataset is one tensor of equal-size images, else CPU crops + device photometry."""
    if views.batched is False:
        return PerImageViews(views, image_size, mean, std)
    if supports_batched_views(dataset):
        return InMemoryViews(views, image_size, mean, std, seed)
    return CropBatchViews(views, image_size, mean, std)


def _tensors(batch) -> Iterator[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        yield batch
    elif isinstance(batch, (list, tuple)):
        for item in batch:
            yield from _tensors(item)


def device_views(
    loader: Iterable, pipeline: ViewPipeline, device: torch.device, start_step: int, rank: int = 0,
    world_size: int = 1,
) -> Iterator[tuple[int, list[torch.Tensor], torch.Tensor]]:
    """(step, views, labels) for each (batch, labels) of `loader`, numbered from start_step; labels stay on
    the host (only an online probe reads them).

    On a GPU, batch k+1 is copied on a side stream while step k computes, so the copy never waits behind the
    step's kernels (the loader should pin its memory: DataLoader(pin_memory=True)). The training stream
    waits for the copy before it reads the batch, and the copied tensors are marked as used by it so the
    allocator does not hand their memory to the next copy too early."""
    batches = iter(loader)
    if device.type != "cuda":
        for step, (batch, labels) in enumerate(batches, start=start_step):
            yield step, pipeline.views(pipeline.transfer(batch, device), step, rank, world_size), labels
        return
    copy_stream = torch.cuda.Stream(device)

    def start_copy():
        try:
            batch, labels = next(batches)
        except StopIteration:
            return None
        with torch.cuda.stream(copy_stream):
            return pipeline.transfer(batch, device), labels

    pending, step = start_copy(), start_step
    while pending is not None:
        compute_stream = torch.cuda.current_stream(device)
        compute_stream.wait_stream(copy_stream)
        batch, labels = pending
        for tensor in _tensors(batch):
            tensor.record_stream(compute_stream)
        upcoming = start_copy()
        yield step, pipeline.views(batch, step, rank, world_size), labels
        pending, step = upcoming, step + 1
