"""A reduced torchvision ResNet (one BasicBlock per stage): small enough to train on a CPU."""

from __future__ import annotations

from typing import Any


def build_model(classes: int = 10) -> Any:
    """torchvision's ResNet with [1, 1, 1, 1] blocks and a 3x3 stem sized for 32x32 images."""
    import torch
    from torchvision.models.resnet import BasicBlock, ResNet

    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=classes)
    # Small images: a 3x3 stride-2 stem instead of 7x7 + max-pool keeps 16x16 maps in layer1.
    model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
    model.maxpool = torch.nn.Identity()
    return model
