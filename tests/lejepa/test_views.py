import torch

from lejepa.spec import ViewSpec
from lejepa.views import BatchedMultiCropViews, MultiCropViews, view_sizes

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _images(n=16, size=28):
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_sizes_scale_with_the_image_like_the_paper():
    assert view_sizes(ViewSpec(), 224) == (224, 98)
    assert view_sizes(ViewSpec(), 28) == (28, 12)
    assert view_sizes(ViewSpec(global_size=24, local_size=10), 28) == (24, 10)


def test_per_image_views_have_the_spec_count_and_sizes():
    views = MultiCropViews(ViewSpec(global_views=2, local_views=3), 28, MEAN, STD)(_images(1)[0])
    assert [tuple(v.shape) for v in views] == [(3, 28, 28)] * 2 + [(3, 12, 12)] * 3


def test_batched_views_shapes_and_determinism():
    make = BatchedMultiCropViews(ViewSpec(global_views=2, local_views=2), 28, MEAN, STD, seed=3)
    images = _images()
    first, again, next_step = make(images, step=5), make(images, step=5), make(images, step=6)
    assert [tuple(v.shape) for v in first] == [(16, 3, 28, 28)] * 2 + [(16, 3, 12, 12)] * 2
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], next_step[0])
    assert not torch.equal(first[0], first[1])  # two global views of one image differ
    assert not torch.equal(make(images, step=5, rank=1, world_size=2)[0], first[0])  # ranks draw their own crops


def test_batched_views_without_augmentation_reproduce_the_normalised_image():
    plain = ViewSpec(global_views=1, local_views=0, global_scale=(1.0, 1.0), ratio=(1.0, 1.0), color_jitter=0,
                     grayscale=0, blur=0, solarize=0)
    images = _images(4)
    views = BatchedMultiCropViews(plain, 28, MEAN, STD, seed=0)(images, step=0)
    expected = (images.float() / 255 - 0.5) / 0.25
    # A full-image square crop resized to its own size is the image itself, possibly flipped.
    for view, image in zip(views[0], expected):
        assert min((view - image).abs().max(), (view - image.flip(-1)).abs().max()) < 1e-4


def test_batched_solarize_and_grayscale_always_on():
    spec = ViewSpec(global_views=1, local_views=0, global_scale=(1.0, 1.0), ratio=(1.0, 1.0), color_jitter=0,
                    grayscale=1, blur=0, solarize=1)
    view = BatchedMultiCropViews(spec, 28, (0, 0, 0), (1, 1, 1), seed=0)(_images(4), step=0)[0]
    assert torch.allclose(view[:, 0], view[:, 1]) and torch.allclose(view[:, 1], view[:, 2])  # grayscale
    assert view.max() <= 128 / 255 + 1e-6  # everything above the threshold was inverted


def test_per_image_path_blurs_with_the_separable_kernel_of_a_tenth_of_the_view():
    from lejepa.photometric import RandomSeparableBlur

    views = MultiCropViews(ViewSpec(blur=0.5), 224, MEAN, STD)
    blurs = {size: [t for t in transform.transforms if isinstance(t, RandomSeparableBlur)]
             for size, transform in ((224, views.global_transform), (98, views.local_transform))}
    assert [(b.p, b.kernel) for b in blurs[224]] == [(0.5, 23)] and [(b.p, b.kernel) for b in blurs[98]] == [(0.5, 9)]
