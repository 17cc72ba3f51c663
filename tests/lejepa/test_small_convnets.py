"""lejepa/small_convnets.py: the ConvNet sized for 28 px follows timm's model interface and the suite's checks."""

from __future__ import annotations

import pytest
import timm
import torch

from lejepa.backbones import adaptation_of, check_architecture, create_backbone, timm_module
from lejepa.run_checks import name_problems, run_problems
from lejepa.small_convnets import SmallConvNet
from lejepa.spec import ModelSpec


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_name_builds_through_timm():
    model = timm.create_model("convnet4_28", pretrained=False, num_classes=10)
    assert isinstance(model, SmallConvNet)
    assert "convnet4_28" in timm.list_models("convnet*")
    check_architecture("convnet4_28")  # what the spec checks call; raises for unknown names
    assert timm_module("convnet4_28") == "small_convnets"
    # conv weights 3*32*9 + 32*64*9 + 64*128*9 + 128*256*9 = 387,936; BatchNorm 2 * (32+64+128+256) = 960;
    # the 10-class classifier 256*10 + 10 = 2,570
    assert _params(model) == 387_936 + 960 + 2_570


def test_shapes_at_28_and_14_px():
    model = timm.create_model("convnet4_28", num_classes=10).eval()
    with torch.no_grad():
        # three 2x2 pools with ceil mode: 28 -> 14 -> 7 -> 4 px, and a 14 px local crop 14 -> 7 -> 4 -> 2 px
        assert model.forward_features(torch.zeros(2, 3, 28, 28)).shape == (2, 256, 4, 4)
        assert model.forward_features(torch.zeros(2, 3, 14, 14)).shape == (2, 256, 2, 2)
        assert model(torch.zeros(2, 3, 28, 28)).shape == (2, 10)


def test_timm_head_interface():
    torch.manual_seed(0)
    model = timm.create_model("convnet4_28", num_classes=10).eval()
    assert model.num_features == 256 and model.num_classes == 10
    images = torch.randn(3, 3, 28, 28)
    with torch.no_grad():
        feature_map = model.forward_features(images)
        pooled = model.forward_head(feature_map, pre_logits=True)
        assert torch.allclose(pooled, feature_map.mean(dim=(2, 3)))  # global average pooling
        logits = model.forward_head(feature_map)
        classifier = model.get_classifier()
        assert torch.allclose(logits, classifier(pooled), atol=1e-6)
        model.reset_classifier(0)
        assert model.num_classes == 0 and isinstance(model.get_classifier(), torch.nn.Identity)
        assert torch.allclose(model(images), pooled)  # num_classes=0: forward returns the pooled features
        model.reset_classifier(5)
        assert model(images).shape == (3, 5)


def test_num_classes_zero_and_custom_widths():
    model = timm.create_model("convnet4_28", num_classes=0, channels=[8, 16, 24])
    assert model.num_features == 24 and _params(model) == 3 * 8 * 9 + 8 * 16 * 9 + 16 * 24 * 9 + 2 * (8 + 16 + 24)
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 28, 28)).shape == (1, 24)
        assert model.forward_features(torch.zeros(1, 3, 28, 28)).shape == (1, 24, 7, 7)  # two pools


def test_bad_builds_say_what_to_change():
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("convnet4_28", pretrained=True)
    with pytest.raises(ValueError, match="one or more positive widths"):
        SmallConvNet(channels=())
    with pytest.raises(ValueError, match="one or more positive widths"):
        SmallConvNet(channels=(8, 0))


def test_suite_builds_and_checks_it(tiny_spec):
    spec = tiny_spec(model={"arch": "convnet4_28", "timm_kwargs": {"channels": [8, 16, 32, 64]}},
                     data={"name": "fashion_mnist"})
    assert run_problems(spec) == [] and name_problems("fashion_mnist", "convnet4_28", dict(spec.method)) == []
    assert "none needed" in adaptation_of("convnet4_28").adapted
    backbone = create_backbone(ModelSpec(arch="convnet4_28", timm_kwargs={"channels": [8, 16, 32, 64]}), 28)
    assert backbone.embed_dim == backbone.feature_dim == 64 and not backbone.is_token_model
    with torch.no_grad():
        assert backbone.eval()(torch.zeros(2, 3, 28, 28)).shape == (2, 64)
        assert backbone.features(torch.zeros(2, 3, 28, 28)).shape == (2, 64)
    [(key, message)] = name_problems("fashion_mnist", "convnet4_32", dict(spec.method))
    assert key == "model.arch" and "did you mean convnet4_28" in message
