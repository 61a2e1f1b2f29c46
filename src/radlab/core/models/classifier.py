"""An image classifier whose input is raw 0..255 pixels: normalisation lives inside the model.

Predict, ONNX export and CAM then all see exactly the training-time preprocessing, and loaders can ship
uint8 tensors between processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn


class ImageClassifier(nn.Module):
    """(B, C, H, W) pixels in 0..255 (uint8 or float) -> (B, num_classes) logits.

    A 1-channel input is repeated to the backbone's channel count (grayscale X-rays into ImageNet nets).
    """

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor
    backbone: Any  # a timm model: forward_features, forward_head, get_classifier, num_features

    def __init__(self, backbone: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.backbone = backbone
        channels = len(mean)
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, channels, 1, 1) * 255.0, persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, channels, 1, 1) * 255.0, persistent=False)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels (0..255) -> the backbone's normalised float input."""
        x = pixels.float()
        if x.shape[1] == 1 and self.pixel_mean.shape[1] != 1:
            x = x.expand(-1, self.pixel_mean.shape[1], -1, -1)
        return (x - self.pixel_mean) / self.pixel_std

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalise(pixels))


def build_image_classifier(
    backbone: str,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    pretrained: bool = False,
    weights_file: str | Path | None = None,
    trust_pickle: bool = False,
    **kwargs: Any,
) -> ImageClassifier:
    """A timm backbone with `num_classes` logits behind the pixel normalisation (see create_backbone)."""
    from radlab.core.models.factory import create_backbone

    model = create_backbone(
        backbone,
        num_classes=num_classes,
        pretrained=pretrained,
        weights_file=weights_file,
        trust_pickle=trust_pickle,
        **kwargs,
    )
    return ImageClassifier(model, mean, std)
