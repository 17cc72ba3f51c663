"""Any timm model as a backbone, adapted to small images (DESIGN.md sections 3, 4 and 7).

`Backbone.forward` gives the pooled embedding the projector trains on; `Backbone.features` gives the
frozen-evaluation features: for ViTs the CLS token (patch-token mean where there is none) of the last
two blocks, normalised and concatenated; for every other model the globally pooled final features.
"""

from __future__ import annotations

import difflib
from functools import lru_cache

import timm
import torch
from torch import nn
from torchvision.ops import MLP

from lejepa.spec import ModelSpec

SMALL_IMAGE_MAX = 64  # at or below this resolution the stem / patch size is adapted


class UnknownArchitecture(KeyError):
    pass


@lru_cache(maxsize=1)
def _timm_names() -> frozenset[str]:
    return frozenset(timm.list_models())


def check_architecture(name: str) -> None:
    base = name.split(".")[0]  # timm allows "arch.pretrained_tag"
    if base not in _timm_names():
        close = difflib.get_close_matches(base, _timm_names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownArchitecture(f"unknown timm architecture '{name}'{hint} (see timm.list_models())")


def _is_vit(model: nn.Module) -> bool:
    return isinstance(model, timm.models.vision_transformer.VisionTransformer)


def _vit_kwargs(name: str, image_size: int, small: bool) -> dict:
    """ViT-family models take their resolution at build time; dynamic size lets local crops through."""
    kwargs = {"img_size": image_size, "dynamic_img_size": True}
    if small:
        kwargs["patch_size"] = 4 if image_size <= 32 else 8  # 64 tokens at 32 px, as for CIFAR ViTs
    return kwargs


def _shrink_resnet_stem(model: nn.Module) -> None:
    """CIFAR-style stem: a 3x3 stride-1 convolution and no max-pool keep 28-32 px images from vanishing."""
    stem = model.conv1
    if isinstance(stem, nn.Conv2d):
        model.conv1 = nn.Conv2d(stem.in_channels, stem.out_channels, 3, 1, 1, bias=False)
    else:  # deep stems (resnet*d, resnet*t): make the first convolution stride 1
        first = stem[0]
        stem[0] = nn.Conv2d(first.in_channels, first.out_channels, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()


def create_timm_model(spec: ModelSpec, image_size: int) -> nn.Module:
    check_architecture(spec.arch)
    small = spec.small_image_stem if spec.small_image_stem is not None else image_size <= SMALL_IMAGE_MAX
    kwargs = dict(spec.timm_kwargs)
    if spec.arch.split(".")[0].startswith(("vit_", "deit_", "deit3_")):
        kwargs = {**_vit_kwargs(spec.arch, image_size, small), **kwargs}
    model = timm.create_model(spec.arch, pretrained=False, num_classes=0, **kwargs)
    if small and hasattr(model, "conv1") and hasattr(model, "maxpool"):
        _shrink_resnet_stem(model)
    return model


class Backbone(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.embed_dim = model.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    @property
    def feature_dim(self) -> int:
        return 2 * self.embed_dim if _is_vit(self.model) else self.embed_dim

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if not _is_vit(self.model):
            return self.model(images)
        model = self.model
        captured: list[torch.Tensor] = []
        hooks = [block.register_forward_hook(lambda _m, _i, out: captured.append(out)) for block in model.blocks[-2:]]
        try:
            model.forward_features(images)
        finally:
            for hook in hooks:
                hook.remove()
        prefix = model.num_prefix_tokens
        pooled = [
            model.norm(tokens)[:, 0] if model.cls_token is not None else model.norm(tokens)[:, prefix:].mean(1)
            for tokens in captured
        ]
        return torch.cat(pooled, dim=-1)


def create_backbone(spec: ModelSpec, image_size: int) -> Backbone:
    return Backbone(create_timm_model(spec, image_size))


def create_projector(spec: ModelSpec, embed_dim: int) -> nn.Module:
    """BatchNorm MLP: (proj_layers - 1) x [Linear, BatchNorm, ReLU] then a Linear to proj_dim."""
    hidden = [spec.proj_hidden] * (spec.proj_layers - 1) + [spec.proj_dim]
    projector = MLP(embed_dim, hidden, norm_layer=nn.BatchNorm1d, activation_layer=nn.ReLU, inplace=False)
    return nn.SyncBatchNorm.convert_sync_batchnorm(projector) if spec.sync_batchnorm else projector
