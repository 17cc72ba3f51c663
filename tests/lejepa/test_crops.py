"""The split view pipeline for image files (lejepa/crops.py on the CPU, lejepa/view_pipeline.py to the
device): uint8 crops as torchvision would cut them, draws keyed by (seed, epoch, index), views that do not
depend on the batch, the worker count, the rank count or where a run resumed."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_spec
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from lejepa.checkpoint import checkpoint_paths
from lejepa.crops import CROP_TRIES, CropViews, as_uint8_chw, crop_boxes
from lejepa.data import get_dataset
from lejepa.data.common import ImageFileDataset
from lejepa.data.imagefolder_sets import IMAGENETTE_WNIDS
from lejepa.data.sampling import ViewDataset, resumable_batches
from lejepa.photometric import PARAMS
from lejepa.spec import ViewSpec
from lejepa.train import pretrain
from lejepa.view_pipeline import build_view_pipeline, device_views, photometric_views

SPEC = ViewSpec(global_views=2, local_views=3, global_size=40, local_size=16)
MEAN, STD = (0.4, 0.45, 0.5), (0.2, 0.25, 0.3)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory) -> ImageFileDataset:
    """Twelve JPEGs of different sizes and shapes (gradients plus noise), labels 0-2."""
    folder = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        height, width = 30 + 7 * i, 90 - 4 * i
        y, x = np.mgrid[0:height, 0:width]
        pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1) + rng.integers(0, 40, (height, width, 3))
        paths.append(folder / f"{i:02d}.jpg")
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(paths[-1], quality=90)
    return ImageFileDataset(paths, [i % 3 for i in range(12)])


def _views_of(dataset, keys, seed=7) -> list[tuple[list[torch.Tensor], torch.Tensor]]:
    items = ViewDataset(dataset, CropViews(SPEC, 40), seed)
    return [items[key][0] for key in keys]


def _equal(a, b) -> bool:
    (crops_a, params_a), (crops_b, params_b) = a, b
    return all(torch.equal(x, y) for x, y in zip(crops_a, crops_b)) and torch.equal(params_a, params_b)


# --- the CPU part ----------------------------------------------------------------------------------------


def test_crops_are_uint8_at_each_views_size_with_parameters_in_range(jpegs):
    crops, params = _views_of(jpegs, [(0, 5)])[0]
    assert [tuple(c.shape) for c in crops] == [(3, 40, 40)] * 2 + [(3, 16, 16)] * 3
    assert all(c.dtype == torch.uint8 for c in crops)
    assert params.shape == (5, len(PARAMS)) and params.dtype == torch.float32
    flags = params[:, [PARAMS.index(f) for f in ("jitter", "grayscale", "blur", "solarize")]]
    assert set(flags.unique().tolist()) <= {0.0, 1.0}
    assert ((params[:, PARAMS.index("sigma")] >= 0.1) & (params[:, PARAMS.index("sigma")] <= 2.0)).all()


def test_crops_are_torchvisions_resized_crops_of_the_drawn_boxes(jpegs):
    image, _ = jpegs[3]
    pixels = as_uint8_chw(image)
    make = CropViews(SPEC, 40)
    torch.manual_seed(11)
    boxes, flips, params = make.draw(*pixels.shape[-2:])
    torch.manual_seed(11)
    crops, again = make(image)
    assert torch.equal(params, again)
    for crop, (top, left, h, w), flip, size in zip(crops, boxes.tolist(), flips.tolist(), make.sizes):
        reference = TF.resized_crop(TF.pil_to_tensor(image), top, left, h, w, [size, size], antialias=True)
        assert torch.equal(crop, reference.flip(-1) if flip else reference)


def test_crop_boxes_follow_random_resized_crop():
    u = np.random.default_rng(0).random((2000, 2 * CROP_TRIES + 2))
    scales = np.tile([[0.05, 0.3]], (2000, 1))
    top, left, h, w = crop_boxes(300, 400, u, scales, (3 / 4, 4 / 3)).T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 300).all() and (left + w <= 400).all()
    area = h * w / (300 * 400)
    assert area.min() > 0.045 and area.max() < 0.31  # the scale range, up to rounding w and h
    assert (w / h).min() > 0.7 and (w / h).max() < 1.43
    assert top.max() > 200 and left.max() > 300  # positions spread over the whole image
    # A box that can never fit (the whole area of a 1 x 50 strip at ratio 3/4-4/3): the centred fallback,
    # cut to the nearest allowed ratio, as torchvision does.
    fallback = crop_boxes(1, 50, np.full((1, 2 * CROP_TRIES + 2), 0.5), np.array([[1.0, 1.0]]), (3 / 4, 4 / 3))
    assert fallback.tolist() == [[0, 24, 1, 1]]  # h 1, w round(1 * 4/3) = 1, left (50 - 1) // 2


def test_inputs_of_every_kind_give_the_same_crops():
    array = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    make = CropViews(SPEC, 40)
    outputs = []
    for image in (Image.fromarray(array), array, torch.from_numpy(array).permute(2, 0, 1).contiguous()):
        torch.manual_seed(0)
        outputs.append(make(image))
    assert _equal(outputs[0], outputs[1]) and _equal(outputs[0], outputs[2])
    gray = torch.from_numpy(array[..., 0]).unsqueeze(0)  # 1 x H x W: repeated to three channels
    torch.manual_seed(0)
    crops, _ = make(gray)
    assert torch.equal(crops[0][0], crops[0][2])
    with pytest.raises(TypeError, match="expected a PIL image"):
        make(torch.zeros(3, 8, 8))  # float: the CPU part takes uint8 only


def test_same_key_same_views_other_epoch_or_index_other_views(jpegs):
    first, again, next_epoch, other_seed = (
        _views_of(jpegs, [(0, 4)])[0], _views_of(jpegs, [(0, 4)])[0], _views_of(jpegs, [(1, 4)])[0],
        _views_of(jpegs, [(0, 4)], seed=8)[0],
    )
    assert _equal(first, again)
    assert not _equal(first, next_epoch) and not _equal(first, other_seed)
    assert not torch.equal(first[0][0], first[0][1])  # the two global views of one image differ


# --- to the device ---------------------------------------------------------------------------------------


def _loader(dataset, start_step, total_steps, rank=0, world_size=1, workers=0, batch_size=4, seed=7):
    pipeline = build_view_pipeline(SPEC, dataset, 40, MEAN, STD, seed)
    loader = torch.utils.data.DataLoader(
        ViewDataset(dataset, pipeline.item_views, seed), num_workers=workers,
        batch_sampler=resumable_batches(np.arange(len(dataset)), batch_size, seed, start_step, total_steps, rank,
                                        world_size),
    )
    return loader, pipeline


def _run(dataset, start_step, total_steps, **kwargs) -> dict[int, list[torch.Tensor]]:
    loader, pipeline = _loader(dataset, start_step, total_steps, **kwargs)
    return {step: views for step, views, _labels in device_views(loader, pipeline, CPU, start_step)}


def test_pipeline_batches_are_uint8_and_views_normalised_floats(jpegs):
    loader, pipeline = _loader(jpegs, 0, 1)
    assert pipeline.name == "crops"
    (crops, params), labels = next(iter(loader))
    assert [(tuple(c.shape), c.dtype) for c in crops] == [((4, 3, 40, 40), torch.uint8)] * 2 + [
        ((4, 3, 16, 16), torch.uint8)] * 3
    assert params.shape == (4, 5, len(PARAMS)) and labels.shape == (4,)
    views = pipeline.views(pipeline.transfer((crops, params), CPU), step=0)
    low = min((0 - m) / s for m, s in zip(MEAN, STD))
    high = max((1 - m) / s for m, s in zip(MEAN, STD))
    assert [tuple(v.shape) for v in views] == [(4, 3, 40, 40)] * 2 + [(4, 3, 16, 16)] * 3
    assert all(v.dtype == torch.float32 and low - 1e-5 <= v.min() and v.max() <= high + 1e-5 for v in views)
    with pytest.raises(ValueError, match="expected parameters"):
        photometric_views(crops, params[:, :2], torch.zeros(3), torch.ones(3))


def test_resumed_pipeline_gives_the_uninterrupted_views(jpegs):
    whole, resumed = _run(jpegs, 0, 5), _run(jpegs, 3, 5)
    assert sorted(resumed) == [3, 4]
    for step in (3, 4):
        assert all(torch.equal(a, b) for a, b in zip(whole[step], resumed[step]))
    assert not torch.equal(whole[3][0], whole[4][0])


def test_views_do_not_depend_on_the_rank_count_or_the_worker_count(jpegs):
    one = _run(jpegs, 0, 3)
    ranks = [_run(jpegs, 0, 3, rank=r, world_size=2) for r in range(2)]
    workers = _run(jpegs, 0, 3, workers=2)
    for step, views in one.items():
        for v, view in enumerate(views):
            assert torch.equal(torch.cat([ranks[0][step][v], ranks[1][step][v]]), view)
            assert torch.equal(workers[step][v], view)


def test_each_dataset_kind_gets_its_path(jpegs):
    digits = get_dataset("digits").load("train")
    assert build_view_pipeline(ViewSpec(), digits, 16, MEAN, STD, 0).name == "in_memory"
    assert build_view_pipeline(ViewSpec(batched=True), jpegs, 40, MEAN, STD, 0).name == "crops"
    assert build_view_pipeline(ViewSpec(batched=False), jpegs, 40, MEAN, STD, 0).name == "per_image"
    assert build_view_pipeline(ViewSpec(batched=False), digits, 16, MEAN, STD, 0).name == "per_image"


def test_image_file_dataset_keeps_paths_in_numpy(jpegs, tmp_path):
    assert isinstance(jpegs._paths, np.ndarray) and jpegs._paths.dtype.kind == "S"
    assert all(isinstance(p, str) and Path(p).exists() for p in jpegs.paths)
    assert jpegs.targets == [i % 3 for i in range(12)] and all(type(t) is int for t in jpegs.targets)
    image, label = jpegs[4]
    assert image.mode == "RGB" and type(label) is int and label == 1
    odd = tmp_path / "naïve näme.jpg"  # non-ASCII file names survive the byte encoding
    Image.new("RGB", (5, 4)).save(odd)
    assert ImageFileDataset([odd], [2])[0][0].size == (5, 4)


def test_pretraining_on_image_files_resumes_bit_identically(tmp_path):
    """A run over image files (the crop path once lejepa/train.py builds its views with build_view_pipeline)
    stopped after its step-3 checkpoint and resumed ends with the uninterrupted run's weights, bit for bit."""
    rng = np.random.default_rng(0)
    for k, wnid in enumerate(sorted(IMAGENETTE_WNIDS)):
        (tmp_path / "data" / "val" / wnid).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "data" / "train" / wnid).mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (18 + k, 24 - i, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / "train" / wnid / f"{i}.JPEG")
    spec = make_tiny_spec(
        data={"name": "imagenette", "root": str(tmp_path / "data"), "image_size": 16},
        model={"arch": "vit_tiny_patch16_224", "timm_kwargs": {"embed_dim": 32, "depth": 1, "num_heads": 2},
               "proj_layers": 1, "proj_dim": 16},
        views={"global_views": 2, "local_views": 2},
        train={"max_steps": 6, "batch_size": 8, "checkpoint_every": 3},
    )
    _, reference = pretrain(spec, tmp_path / "reference", progress=False)
    shutil.copytree(tmp_path / "reference", tmp_path / "resumed")
    newest = checkpoint_paths(tmp_path / "resumed" / "ckpt")[0]
    assert newest.name == "step_00000006.pt"
    newest.unlink()
    _, resumed = pretrain(spec, tmp_path / "resumed", progress=False)
    assert resumed.steps == 6 and resumed.final_loss == reference.final_loss
    final = [torch.load(checkpoint_paths(tmp_path / run / "ckpt")[0], weights_only=False)["model"]
             for run in ("reference", "resumed")]
    assert all(torch.equal(tensor, final[1][name]) for name, tensor in final[0].items())
