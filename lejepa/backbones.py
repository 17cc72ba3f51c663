"""Any timm model as a backbone, adapted to small images (docs/recipes.md section 6, docs/evaluation.md section 1).

`Backbone.forward` gives the pooled embedding the projector trains on; `Backbone.features` gives the
frozen-evaluation features (docs/evaluation.md section 1): for isotropic token models (ViT, DeiT, CaiT, XCiT, EVA,
BEiT, MLP-Mixer) the CLS token of the last two blocks, normalised and concatenated (the patch-token mean
where a model has no CLS); for CNNs and hierarchical hybrids the globally pooled final features.

Architectures are built by the rules of the timm module that defines them (`timm_module`: 'resnet',
'vision_transformer', ...): `ADAPTATIONS` says, per module, which build arguments give a resolution, what
changes at or below `SMALL_IMAGE_MAX` px, and whether the model takes only its build resolution. Modules
not listed are built as timm defines them. (An architecture's *family*, the label tables group by, is
another thing: lejepa/architectures.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import timm
import torch
import torch.nn.functional as F
from timm.layers import Conv2dSame
from timm.models.beit import Beit
from timm.models.cait import Cait
from timm.models.eva import Eva
from timm.models.mlp_mixer import MlpMixer
from timm.models.vision_transformer import VisionTransformer
from timm.models.xcit import Xcit
from torch import nn
from torchvision.ops import MLP

from lejepa import small_convnets  # noqa: F401  (registers convnet4_28 with timm)
from lejepa.masking import masked_vit_forward, supports_masking
from lejepa.names import did_you_mean
from lejepa.spec import ModelSpec

SMALL_IMAGE_MAX = 64  # at or below this resolution the stem / patch / window sizes are adapted


class UnknownArchitecture(KeyError):
    pass


@lru_cache(maxsize=1)
def _timm_names() -> frozenset[str]:
    return frozenset(timm.list_models())


def check_architecture(name: str) -> None:
    base = name.split(".")[0]  # timm allows "arch.pretrained_tag"
    if base not in _timm_names():
        hint = did_you_mean(base, _timm_names())
        raise UnknownArchitecture(f"unknown timm architecture '{name}'{hint} (see timm.list_models())")


def timm_module(name: str) -> str:
    """The timm module defining `name` ('resnet', 'vision_transformer', 'maxxvit', ...)."""
    check_architecture(name)
    return timm.models.model_entrypoint(name.split(".")[0]).__module__.rsplit(".", 1)[-1]


# --- small-image adaptations -------------------------------------------------------------------------


def _set_stride(conv: nn.Conv2d, stride: int) -> None:
    """Change a stem convolution's stride in place; the weights keep their shape (same parameter count)."""
    conv.stride = (stride, stride)
    if not isinstance(conv, Conv2dSame):  # Conv2dSame pads from its stride at run time
        conv.padding = tuple((k - 1) // 2 for k in conv.kernel_size)  # output ceil(size / stride)


def _cifar_conv(conv: nn.Conv2d) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=False)


def _resnet_small(model: nn.Module) -> None:
    """CIFAR-style stem: a 3x3 stride-1 convolution and no max-pool keep 28-32 px images from vanishing."""
    if isinstance(model.conv1, nn.Conv2d):
        model.conv1 = _cifar_conv(model.conv1)
    else:  # deep stems (resnet*d, resnet*t): the first of their three convolutions
        model.conv1[0] = _cifar_conv(model.conv1[0])
    model.maxpool = nn.Identity()


def _densenet_small(model: nn.Module) -> None:
    model.features.conv0 = _cifar_conv(model.features.conv0)
    model.features.pool0 = nn.Identity()


def _patchify_small(model: nn.Module) -> None:
    """A 4x4 stride-4 patchify stem becomes a 3x3 stride-1 convolution (its norm layer stays)."""
    model.stem[0] = _cifar_conv(model.stem[0])


def _patch_size(image_size: int) -> int:
    return 4 if image_size <= 32 else 8  # 64 tokens at 32 px (as CIFAR ViTs), 64 at 64 px


@dataclass(frozen=True)
class Adaptation:
    """How the architectures of one timm module are built at a resolution and adapted to small images (<= SMALL_IMAGE_MAX px)."""

    adapted: str  # what changes for small images, in words (docs, `lejepa list architectures`)
    sized: Callable[[int], dict] = lambda size: {}  # build kwargs naming the resolution (any size)
    small: Callable[[int], dict] = lambda size: {}  # extra build kwargs for small images
    small_stem: Callable[[nn.Module], None] | None = None  # stem surgery after building, small images
    fixed_input: bool = False  # takes only its build resolution: other sizes (local crops) are resized
    min_size: int = 0  # built at no less than this resolution (smaller images are resized up: fixed_input)
    pad_to: Callable[[nn.Module], int] | None = None  # inputs zero-padded to a multiple of this many px


def _vit_sized(size: int) -> dict:
    # Dynamic size lets local crops through (position embeddings are interpolated to the token grid);
    # dynamic padding lets crops that are not a multiple of the patch size through (14 px at patch 4).
    return {"img_size": size, "dynamic_img_size": True, "dynamic_img_pad": True}


def _token_small(size: int) -> dict:
    return {"patch_size": _patch_size(size)}


_VIT = Adaptation("patch 4 at <= 32 px, 8 at <= 64 px; img_size set; any input size (padded to the patch)",
              _vit_sized, _token_small)
_FIXED_TOKENS = Adaptation(
    "patch 4 at <= 32 px, 8 at <= 64 px; img_size set; fixed input (local crops resized)",
    lambda size: {"img_size": size}, _token_small, fixed_input=True,
)
_SWIN = Adaptation(
    "patch 2, window 4 (stages at 1/2..1/16 of the image); img_size set, any input size (padded to the patch)",
    lambda size: {"img_size": size, "strict_img_size": False},
    lambda size: {"patch_size": 2, "window_size": 4},
    # Its patch embedding takes only multiples of the patch size (98 px local crops of 224 px images
    # are not): pad like ViT's dynamic_img_pad does.
    pad_to=lambda model: model.patch_embed.patch_size[0],
)


def _round_up(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple

ADAPTATIONS: dict[str, Adaptation] = {
    # Stems stop downsampling: stride-4 stems (ResNet's conv + max-pool, patchify, MetaFormer) leave a
    # total stride of 8 (4x4 final maps at 32 px), stride-2 stems a total stride of 16 (2x2 at 32 px).
    "resnet": Adaptation("3x3 stride-1 stem, no max-pool (total stride 8)", small_stem=_resnet_small),
    "densenet": Adaptation("3x3 stride-1 stem, no stem pool (total stride 8)", small_stem=_densenet_small),
    "convnext": Adaptation("3x3 stride-1 stem instead of the 4x4 patchify (total stride 8)", small_stem=_patchify_small),
    "edgenext": Adaptation("3x3 stride-1 stem instead of the 4x4 patchify (total stride 8)", small_stem=_patchify_small),
    "metaformer": Adaptation("stride-1 stem instead of 4 (total stride 8)", small_stem=lambda m: _set_stride(m.stem.conv, 1)),
    "regnet": Adaptation("stride-1 stem (total stride 16)", small_stem=lambda m: _set_stride(m.stem.conv, 1)),
    "efficientnet": Adaptation("stride-1 stem (total stride 16)", small_stem=lambda m: _set_stride(m.conv_stem, 1)),
    "mobilenetv3": Adaptation("stride-1 stem (total stride 16)", small_stem=lambda m: _set_stride(m.conv_stem, 1)),
    "mobilevit": Adaptation("stride-1 stem (total stride 16)", small_stem=lambda m: _set_stride(m.stem.conv, 1)),
    # PVT-v2's first attention shrinks its keys with a stride-8 convolution: the stride-4 patch embedding
    # leaves a 14 px local crop 4x4 tokens, too few for it, so the embedding must stop downsampling.
    "pvt_v2": Adaptation("stride-1 overlapping patch embedding instead of 4 (total stride 8)",
                     small_stem=lambda m: _set_stride(m.patch_embed.proj, 1)),
    # lejepa/small_convnets.py: built for 28-32 px already (stride-1 convolutions, 2x2 pools between blocks)
    "small_convnets": Adaptation("none needed: built for 28-32 px images (three 2x2 pools, total stride 8)"),
    "vision_transformer": _VIT,
    # ResNet-stem hybrids (vit_tiny_r_s16_p8_384, ...): timm builds them for their name's resolution unless
    # told img_size; any input size then works as for plain ViTs (no small-image change to the stem).
    "vision_transformer_hybrid": Adaptation("img_size set; any input size (the ResNet stem is not changed)", _vit_sized),
    "deit": _VIT,
    "eva": _VIT,
    "cait": _FIXED_TOKENS,
    "beit": _FIXED_TOKENS,
    # timm's Mixer entry points fix their patch size, so only the resolution can be set
    "mlp_mixer": Adaptation("img_size set (patch size fixed by timm); fixed input (local crops resized)",
                        lambda size: {"img_size": size}, fixed_input=True),
    # XCiT checks only that img_size is a multiple of the patch (8 or 16); its convolutional patch
    # embedding and Fourier position encoding take any input size.
    "xcit": Adaptation("patch 8 (its convolutional patch embedding takes 8 or 16); img_size set",
                   lambda size: {"img_size": _round_up(size, 16)}, lambda size: {"patch_size": 8}),
    "swin_transformer": _SWIN,
    "swin_transformer_v2": _SWIN,
    # window = grid = build size / 32 must be at least 1: images under 32 px are resized up to 32.
    "maxxvit": Adaptation("img_size set: window = grid = image / 32 (2 at 64 px); fixed input (local crops resized)",
                      lambda size: {"img_size": size}, fixed_input=True, min_size=32),
}
_UNADAPTED = Adaptation("none (built as timm defines it; use >= 224 px or timm_kwargs)")


def adaptation_of(name: str) -> Adaptation:
    return ADAPTATIONS.get(timm_module(name), _UNADAPTED)


# --- frozen-evaluation features ----------------------------------------------------------------------


def _pool_tokens(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The model's final norm, then its CLS token or (no CLS) the mean of its patch tokens."""
    tokens = model.norm(tokens)
    if getattr(model, "cls_token", None) is not None:
        pooled = tokens[:, 0]
    else:
        pooled = tokens[:, getattr(model, "num_prefix_tokens", 0):].mean(1)
    fc_norm = getattr(model, "fc_norm", None)  # models pooling before their last norm (BEiT, MAE-style)
    return pooled if fc_norm is None else fc_norm(pooled)


def _token_readout(model: nn.Module) -> tuple[list[nn.Module], Callable[[torch.Tensor], torch.Tensor]] | None:
    """(blocks whose outputs make the features, tokens -> pooled vector), or None for pooled models."""
    if isinstance(model, Cait):  # the CLS token joins only in the last, class-attention blocks
        return list(model.blocks_token_only[-2:]), lambda cls: model.norm(cls)[:, 0]
    if isinstance(model, Xcit):  # likewise: class-attention blocks over [CLS, patches]
        return list(model.cls_attn_blocks[-2:]), lambda tokens: model.norm(tokens)[:, 0]
    if isinstance(model, (VisionTransformer, Eva, Beit, MlpMixer)):
        return list(model.blocks[-2:]), lambda tokens: _pool_tokens(model, tokens)
    return None


class Backbone(nn.Module):
    def __init__(self, model: nn.Module, input_size: int | None = None, pad_multiple: int = 1):
        """`input_size`: the only resolution the model takes (None: any); other inputs are resized.
        `pad_multiple`: inputs are zero-padded (bottom and right) to a multiple of it."""
        super().__init__()
        self.model, self.input_size, self.pad_multiple = model, input_size, pad_multiple
        # what forward returns: after any head layers timm keeps with num_classes=0 (MobileNetV3's conv head)
        self.embed_dim: int = getattr(model, "head_hidden_size", None) or model.num_features

    @property
    def is_token_model(self) -> bool:
        return _token_readout(self.model) is not None

    @property
    def feature_dim(self) -> int:
        return 2 * self.model.num_features if self.is_token_model else self.embed_dim

    def _fit(self, images: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and images.shape[-2:] != (self.input_size, self.input_size):
            images = F.interpolate(images, size=(self.input_size, self.input_size), mode="bilinear",
                                   align_corners=False)
        height, width = images.shape[-2:]
        pad_h, pad_w = (-height) % self.pad_multiple, (-width) % self.pad_multiple
        return F.pad(images, (0, pad_w, 0, pad_h)) if pad_h or pad_w else images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self._fit(images))

    @property
    def supports_patch_masking(self) -> bool:
        return supports_masking(self.model)

    def forward_masked(self, images: torch.Tensor, ratio: float, generator: torch.Generator) -> torch.Tensor:
        """forward() with int(patches * ratio) patch tokens of each image dropped (lejepa/masking.py)."""
        if not self.supports_patch_masking:
            raise ValueError(f"patch masking needs a ViT (timm VisionTransformer); this backbone is "
                             f"{type(self.model).__name__}: set method.patch_mask_ratio to 0")
        return masked_vit_forward(self.model, self._fit(images), ratio, generator)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.readouts(images)[0]

    def readouts(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features(images), forward(images)) from one pass: the frozen-evaluation features and the pooled
        embedding (what an online probe trains on)."""
        readout = _token_readout(self.model)
        if readout is None:
            pooled = self.forward(images)
            return pooled, pooled
        blocks, pool = readout
        captured: list[torch.Tensor] = []
        hooks = [block.register_forward_hook(lambda _m, _i, out: captured.append(out)) for block in blocks]
        try:
            pooled = self.forward(images)  # timm: forward_head(forward_features(x)); the blocks run once
        finally:
            for hook in hooks:
                hook.remove()
        return torch.cat([pool(tokens) for tokens in captured], dim=-1), pooled


def create_timm_model(spec: ModelSpec, image_size: int) -> tuple[nn.Module, Adaptation]:
    family = adaptation_of(spec.arch)
    small = spec.small_image_stem if spec.small_image_stem is not None else image_size <= SMALL_IMAGE_MAX
    build_size = max(image_size, family.min_size)
    kwargs = {**family.sized(build_size), **(family.small(build_size) if small else {}), **spec.timm_kwargs}
    model = timm.create_model(spec.arch, pretrained=False, num_classes=0, **kwargs)
    if small and family.small_stem is not None:
        family.small_stem(model)
    return model, family


def create_backbone(spec: ModelSpec, image_size: int) -> Backbone:
    model, family = create_timm_model(spec, image_size)
    build_size = max(image_size, family.min_size)
    input_size = spec.timm_kwargs.get("img_size", build_size) if family.fixed_input else None
    return Backbone(model, input_size, family.pad_to(model) if family.pad_to else 1)


def create_projector(spec: ModelSpec, embed_dim: int) -> nn.Module:
    """BatchNorm MLP: (proj_layers - 1) x [Linear, BatchNorm, ReLU] then a Linear to proj_dim."""
    hidden = [spec.proj_hidden] * (spec.proj_layers - 1) + [spec.proj_dim]
    projector = MLP(embed_dim, hidden, norm_layer=nn.BatchNorm1d, activation_layer=nn.ReLU, inplace=False)
    return nn.SyncBatchNorm.convert_sync_batchnorm(projector) if spec.sync_batchnorm else projector
