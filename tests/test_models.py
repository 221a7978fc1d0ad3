"""Tests for ogc_lab.models: shapes, gradients, channels_last, parameter counts, bad names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ogc_lab.models import MODELS, make_model

INPUTS = {
    "mlp": (2,),
    "cnn-small": (1, 8, 8),
    "cnn8": (3, 32, 32),
    "resnet9": (3, 32, 32),
    "resnet9-w16": (3, 32, 32),
    "resnet9-w24": (3, 32, 32),
    "resnet9-w32": (3, 32, 32),
    "resnet18": (3, 32, 32),
    "resnet34": (3, 32, 32),
    "resnet50": (3, 32, 32),
}
CONV_NETS = [name for name in MODELS if name != "mlp"]


def test_every_registered_model_is_tested():
    assert set(INPUTS) == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_shape_and_backward(name):
    torch.manual_seed(0)
    model = make_model(name, 7, INPUTS[name])
    x = torch.randn(3, *INPUTS[name])
    out = model(x)
    assert out.shape == (3, 7)
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize("name", CONV_NETS)
def test_channels_last_gives_same_output(name):
    torch.manual_seed(0)
    model = make_model(name, 5, INPUTS[name]).eval()
    x = torch.randn(2, *INPUTS[name])
    reference = model(x)
    model = model.to(memory_format=torch.channels_last)
    out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-4)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet18_parameter_count():
    count = _count(make_model("resnet18", 10, (3, 32, 32)))
    assert abs(count - 11.2e6) / 11.2e6 < 0.01
    assert count == 11_173_962  # the standard CIFAR ResNet-18 for 10 classes


def test_resnet34_and_resnet50_parameter_counts():
    assert _count(make_model("resnet34", 100, (3, 32, 32))) == 21_328_292
    assert _count(make_model("resnet50", 50, (3, 224, 224))) == 23_610_482


def test_cnn8_architecture():
    model = make_model("cnn8", 10, (3, 32, 32))
    convs = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert convs == [64, 64, 128, 128, 196, 196]
    assert linears == [(196 * 4 * 4, 256), (256, 10)]


def test_resnet9_layout_and_widths():
    model = make_model("resnet9-w16", 10, (3, 32, 32))
    convs = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [16, 32, 32, 32, 64, 128, 128, 128]  # prep, stage 1 + residual, stage 2, stage 3 + residual
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3
    features = model[:-2](torch.randn(2, 3, 32, 32))  # everything before flatten and the linear layer
    assert features.shape == (2, 128, 1, 1)
    # Page's ResNet-9 (base 64): 6.57M weights for 10 classes; halving the base quarters the conv weights
    assert _count(make_model("resnet9", 10, (3, 32, 32))) == 6_573_130
    assert _count(make_model("resnet9-w32", 10, (3, 32, 32))) == 1_646_122


def test_residual_block_adds_its_input():
    from ogc_lab.models import Residual

    block = Residual(4)
    for module in block.body:
        if isinstance(module, nn.Conv2d):
            nn.init.zeros_(module.weight)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(block(x), x + torch.relu(block.body[1].bias).view(1, 4, 1, 1))


def test_resnet_stem_keeps_resolution():
    model = make_model("resnet18", 10, (3, 32, 32))
    stem_conv = model.stem[0]
    assert stem_conv.kernel_size == (3, 3) and stem_conv.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.stages(model.stem(torch.randn(1, 3, 32, 32))).shape == (1, 512, 4, 4)


def test_mlp_layers():
    linears = [m for m in make_model("mlp", 2, (2,)).modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 64), (64, 64), (64, 2)]


def test_unknown_model_lists_names():
    with pytest.raises(ValueError, match="resnet18") as err:
        make_model("vgg16", 10, (3, 32, 32))
    assert "cnn8" in str(err.value)


@pytest.mark.parametrize("name, shape", [("cnn8", (2,)), ("resnet18", (3, 4, 4)), ("resnet50", (1, 64, 64))])
def test_bad_input_shape_rejected(name, shape):
    with pytest.raises(ValueError, match="in_shape"):
        make_model(name, 10, shape)


def test_bad_num_classes_rejected():
    with pytest.raises(ValueError, match="num_classes"):
        make_model("mlp", 1, (2,))
