"""Patch masking of ViT inputs (the official commands' `patch_mask_ratio`; docs/lejepa.md section 2b).

Follows stable-pretraining's `PatchMasking` transform with its `EfficientMaskedTimmViT` backbone: exactly
int(num_patches * ratio) patches of each image, drawn uniformly without replacement and independently per
image, are removed; the ViT drops their tokens after the position embedding and runs its blocks on the
rest, prefix tokens (class, register) always kept. Here the tokens are dropped directly rather than
through NaN pixels, and the draw comes from a generator the caller seeds, so a masked step can be
replayed exactly (resume).
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn


def supports_masking(model: nn.Module) -> bool:
    return isinstance(model, VisionTransformer)


def kept_patches(batch: int, num_patches: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(batch, num_patches - int(num_patches * ratio)) sorted indices of the patches each image keeps."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"patch mask ratio must be in [0, 1), got {ratio}")
    keep = num_patches - int(num_patches * ratio)
    scores = torch.rand(batch, num_patches, generator=generator)
    return scores.argsort(dim=1)[:, :keep].sort(dim=1).values


def masked_vit_forward(model: VisionTransformer, images: torch.Tensor, ratio: float,
                       generator: torch.Generator) -> torch.Tensor:
    """timm ViT's forward_features + forward_head (pooled, num_classes=0) with a random share of its patch
    tokens dropped after the position embedding."""
    tokens = model._pos_embed(model.patch_embed(images))  # (B, prefix + patches, C), positions added
    prefix = model.num_prefix_tokens
    batch, num_patches = tokens.shape[0], tokens.shape[1] - prefix
    keep = kept_patches(batch, num_patches, ratio, generator).to(tokens.device)
    patches = torch.gather(tokens[:, prefix:], 1, keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
    tokens = torch.cat([tokens[:, :prefix], patches], dim=1)
    tokens = model.norm(model.blocks(model.norm_pre(model.patch_drop(tokens))))
    return model.forward_head(tokens, pre_logits=True)
