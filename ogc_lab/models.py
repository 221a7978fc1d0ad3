"""Models by name: a toy MLP, small CNNs, ResNet-9s, CIFAR-stem ResNets and torchvision's ResNet-50.

Every factory takes ``(num_classes, in_shape)``, where ``in_shape`` is one input's shape: ``(D,)`` for
vectors, ``(C, H, W)`` for images.  Layers are PyTorch's defaults (initialisation included), so a
seeded ``torch.manual_seed`` before ``make_model`` fixes the weights.  All conv nets accept
channels_last inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torchvision
from torch import Tensor, nn

from .registry import check_choice, choose


def mlp(num_classes: int, in_shape: tuple[int, ...], hidden: int = 64) -> nn.Module:
    """Two hidden ReLU layers (64 units) on the flattened input: the toy 2-D model."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(in_shape), hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    """3x3 convolution (same padding, no bias), BatchNorm, ReLU."""
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _image_shape(in_shape: tuple[int, ...], min_side: int, model: str) -> tuple[int, int, int]:
    if len(in_shape) != 3 or min(in_shape[1:]) < min_side:
        raise ValueError(f"{model} needs in_shape (C, H, W) with H, W >= {min_side}, got {in_shape}")
    return in_shape[0], in_shape[1], in_shape[2]


def cnn_small(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """A small CNN for 8x8 digits: two 3x3 blocks of 32, pool, a block of 64, global average pool, linear."""
    channels, _, _ = _image_shape(in_shape, 2, "cnn-small")
    return nn.Sequential(
        *conv_bn_relu(channels, 32), *conv_bn_relu(32, 32), nn.MaxPool2d(2),
        *conv_bn_relu(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(64, num_classes),
    )


def cnn8(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """The 8-layer CNN of the robust-loss literature (Ma et al. 2020): 6 conv (64,64,128,128,196,196) + 2 fc.

    Three blocks of two 3x3 conv-BN-ReLU layers, each followed by 2x2 max-pooling, then fc 256
    (BatchNorm, ReLU) and fc K.  For 32x32 inputs the flattened features are 196 * 4 * 4.
    """
    channels, h, w = _image_shape(in_shape, 8, "cnn8")
    widths = [(channels, 64), (64, 128), (128, 196)]
    blocks = [layer for c_in, c_out in widths for layer in (*conv_bn_relu(c_in, c_out), *conv_bn_relu(c_out, c_out),
                                                            nn.MaxPool2d(2))]
    return nn.Sequential(
        *blocks, nn.Flatten(),
        nn.Linear(196 * (h // 8) * (w // 8), 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True),
        nn.Linear(256, num_classes),
    )


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN projection) shortcut, ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        needs_projection = stride != 1 or c_in != c_out
        self.shortcut = nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
        ) if needs_projection else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet with the CIFAR stem (3x3 conv stride 1, no max-pool) and four stages of BasicBlocks.

    Stages have 64, 128, 256, 512 channels; every stage after the first halves the resolution.
    """

    def __init__(self, blocks_per_stage: tuple[int, int, int, int], num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(*conv_bn_relu(in_channels, 64))
        stages, c_in = [], 64
        for stage, (c_out, n_blocks) in enumerate(zip((64, 128, 256, 512), blocks_per_stage)):
            first_stride = 1 if stage == 0 else 2
            stages.append(nn.Sequential(*(BasicBlock(c_in if i == 0 else c_out, c_out, first_stride if i == 0 else 1)
                                          for i in range(n_blocks))))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def cifar_resnet(blocks_per_stage: tuple[int, int, int, int], num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """A CIFAR-stem ResNet for (C, H, W) inputs."""
    channels, _, _ = _image_shape(in_shape, 8, "CIFAR ResNet")
    return CifarResNet(blocks_per_stage, num_classes, channels)


class Residual(nn.Module):
    """``x + f(x)`` with f two 3x3 conv-BN-ReLU layers at constant width (ResNet-9's residual blocks)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_bn_relu(channels, channels), *conv_bn_relu(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def resnet9(num_classes: int, in_shape: tuple[int, ...], base: int = 64) -> nn.Module:
    """The ResNet-9 of the fast-CIFAR literature (Page, "How to train your ResNet", 2018): widths base * (1, 2, 4, 8).

    A 3x3 conv-BN-ReLU "prep" layer, then three stages of conv-BN-ReLU and 2x2 max-pooling, the first
    and last followed by a ``Residual`` block, then global max-pooling and a linear layer.  No logit
    scaling: every loss sees the logits as they are.  Nine weight layers; 6.6M parameters at base 64.
    """
    channels, _, _ = _image_shape(in_shape, 8, "resnet9")
    w0, w1, w2, w3 = (base * k for k in (1, 2, 4, 8))
    return nn.Sequential(
        *conv_bn_relu(channels, w0),
        *conv_bn_relu(w0, w1), nn.MaxPool2d(2), Residual(w1),
        *conv_bn_relu(w1, w2), nn.MaxPool2d(2),
        *conv_bn_relu(w2, w3), nn.MaxPool2d(2), Residual(w3),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(w3, num_classes),
    )


def resnet50(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """torchvision's ImageNet ResNet-50 (random init), for WebVision; expects 3-channel images."""
    channels, _, _ = _image_shape(in_shape, 32, "resnet50")
    if channels != 3:
        raise ValueError(f"resnet50 needs 3-channel images, got in_shape {in_shape}")
    return torchvision.models.resnet50(weights=None, num_classes=num_classes)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "cnn-small": cnn_small,
    "cnn8": cnn8,
    "resnet9": resnet9,
    # narrower ResNet-9s for CPU training (the number is the base width; widths chosen in recipes.py)
    **{f"resnet9-w{base}": partial(resnet9, base=base) for base in (16, 24, 32)},
    "resnet18": partial(cifar_resnet, (2, 2, 2, 2)),
    "resnet34": partial(cifar_resnet, (3, 4, 6, 3)),
    "resnet50": resnet50,
}


def check_model(name: str) -> None:
    """Raise ``registry.unknown``'s ValueError unless ``name`` is one of ``MODELS``."""
    check_choice("model", name, MODELS)


def make_model(name: str, num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """Build the model ``name`` for ``num_classes`` outputs and inputs of shape ``in_shape``."""
    build = choose("model", name, MODELS)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return build(num_classes, tuple(int(d) for d in in_shape))
