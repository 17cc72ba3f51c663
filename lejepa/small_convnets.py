"""Plain ConvNets sized for 28-32 px images on a CPU, registered in timm's model registry.

timm's architectures are built for >= 224 px: even with the small-image stem (lejepa/backbones.py) a
ResNet spends most of a CPU step on full-resolution stages. The quickstart (experiments/quickstart.yaml)
needs a backbone that pretrains on all 60,000 Fashion-MNIST images within minutes on 2 cores, the size of
the ConvNets used as CPU / small-data baselines since LeNet: a few 3x3 conv-BatchNorm-ReLU blocks with
2x2 max-pooling between them and global average pooling at the end.

Registering with `timm.models.register_model` makes `model.arch: convnet4_28` work wherever a timm name
does (`timm.create_model`, the spec checks, lejepa/backbones.py, which imports this module). The model
follows timm's interface: `num_features`, `forward_features` (the final feature map), `forward_head`
(pooling, then the classifier unless `pre_logits`), `get_classifier` / `reset_classifier`;
`num_classes=0` makes `forward` return the pooled features. There are no pretrained weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import ClassifierHead
from timm.models import register_model
from torch import nn


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),  # the BatchNorm carries the bias
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallConvNet(nn.Module):
    """len(channels) conv-BN-ReLU blocks, each but the last followed by a 2x2 max-pool (ceil mode, so an
    odd-sized map keeps its border: 28 -> 14 -> 7 -> 4 px for four blocks, and a 14 px crop ends at 2 px),
    then global pooling and a linear classifier (none when num_classes=0)."""

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 256), in_chans: int = 3, num_classes: int = 1000,
                 global_pool: str = "avg", drop_rate: float = 0.0):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be one or more positive widths, one per block; got {channels}")
        layers: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(zip((in_chans, *channels), channels)):
            if index > 0:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            layers.append(_block(width_in, width_out))
        self.features = nn.Sequential(*layers)
        self.num_classes, self.drop_rate = num_classes, drop_rate
        self.num_features = self.head_hidden_size = channels[-1]
        self.head = ClassifierHead(channels[-1], num_classes, pool_type=global_pool, drop_rate=drop_rate)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _build(name: str, pretrained: bool, channels: Sequence[int], **kwargs) -> SmallConvNet:
    if pretrained:
        raise ValueError(f"{name} has no pretrained weights (it is lejepa-bench's own CPU backbone): "
                         f"build it with pretrained=False")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):  # timm.create_model's, for weights
        kwargs.pop(key, None)
    return SmallConvNet(channels=channels, **kwargs)


@register_model
def convnet4_28(pretrained: bool = False, **kwargs) -> SmallConvNet:
    """Four blocks of 32, 64, 128, 256 channels (0.39 M parameters, counted in
    tests/lejepa/test_small_convnets.py): 28 px in, 4x4x256 out, 256 features.
    `channels` in timm_kwargs changes the widths (and, by its length, the number of blocks)."""
    return _build("convnet4_28", pretrained, kwargs.pop("channels", (32, 64, 128, 256)), **kwargs)
