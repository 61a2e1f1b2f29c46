"""Class activation maps for radlab's image classifiers.

A timm backbone whose head is global average pooling followed by one linear layer gets the plain CAM of
Zhou et al. (the recipe of the MURA paper): the class's weights applied to the last feature map. It is
exact, since the mean of that map is the logit, and needs no gradient. Any other head gets Grad-CAM from the
pytorch-grad-cam library on the last feature stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

CamMethod = Literal["auto", "cam", "gradcam"]


@dataclass(frozen=True)
class CamResult:
    """Maps (B, K, h, w) scaled to 0..1 per map, the logits (B, K) and the method that made them."""

    maps: np.ndarray
    logits: np.ndarray
    method: str


def feature_map_cam(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Plain CAM: features (B, C, h, w) and head weights (K, C) -> (B, K, h, w), whose spatial mean is the
    logit when the head is global average pooling followed by this linear layer."""
    maps = torch.einsum("bchw,kc->bkhw", features.float(), weight.float())
    if bias is not None:
        maps = maps + bias.float().view(1, -1, 1, 1)
    return maps


def spatial_features(extractor: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The last feature map (B, C, h, w) of a feature extractor made by create_feature_extractor (a timm model
    without classifier, or a torchvision trunk followed by global average pooling)."""
    forward = getattr(extractor, "forward_features", None) or getattr(extractor, "trunk", None)
    if not callable(forward):
        raise TypeError(f"{type(extractor).__name__} exposes no feature map (forward_features or trunk)")
    features: torch.Tensor = forward(images)
    return features


def _linear_head(backbone: nn.Module) -> nn.Linear | None:
    get_classifier = getattr(backbone, "get_classifier", None)
    head = get_classifier() if callable(get_classifier) else None
    return head if isinstance(head, nn.Linear) else None


def _plain_cam_parts(classifier: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Linear] | None:
    """(the backbone's feature-map forward, its linear head) when the classifier has both; plain CAM needs
    them, Grad-CAM does not."""
    backbone = getattr(classifier, "backbone", None)
    head = _linear_head(backbone) if isinstance(backbone, nn.Module) else None
    forward_features = getattr(backbone, "forward_features", None)
    return (forward_features, head) if head is not None and callable(forward_features) else None


@torch.no_grad()
def plain_cam_applies(classifier: nn.Module, pixels: torch.Tensor, tolerance: float = 1e-4) -> bool:
    """Whether the plain CAM is exact for this model: its maps average to the model's own logits."""
    parts = _plain_cam_parts(classifier)
    if parts is None:
        return False
    forward_features, head = parts
    features = forward_features(classifier.normalise(pixels))  # type: ignore[operator]  # an ImageClassifier
    if features.ndim != 4 or features.shape[1] != head.in_features:
        return False
    expected = classifier(pixels).float()
    got = feature_map_cam(features, head.weight, head.bias).mean(dim=(2, 3))
    return bool(torch.allclose(got, expected, atol=tolerance * (1.0 + float(expected.abs().max()))))


def class_activation_maps(
    classifier: nn.Module,
    pixels: torch.Tensor,
    classes: Sequence[int] | None = None,
    method: CamMethod = "auto",
) -> CamResult:
    """CAMs of an `ImageClassifier` (pixels 0..255, (B, C, H, W)) for `classes` (all outputs by default).

    Maps are at the feature-map resolution for plain CAM and at the input resolution for Grad-CAM; callers
    resize them to the original image (see overlay_heatmap). Each map is min-max scaled to 0..1.
    """
    classifier = classifier.eval()
    pixels = pixels.float()
    use_plain = method == "cam" or (method == "auto" and plain_cam_applies(classifier, pixels[:1]))
    parts = _plain_cam_parts(classifier) if use_plain else None
    if parts is not None:
        forward_features, head = parts
        with torch.no_grad():
            features = forward_features(classifier.normalise(pixels))  # type: ignore[operator]  # an ImageClassifier
            raw = feature_map_cam(features, head.weight, head.bias)
            logits = raw.mean(dim=(2, 3))
        chosen = list(range(raw.shape[1])) if classes is None else list(classes)
        return CamResult(_unit_scale(raw[:, chosen].numpy()), logits[:, chosen].numpy(), "cam")
    return _grad_cam(classifier, pixels, classes)


def _grad_cam(classifier: nn.Module, pixels: torch.Tensor, classes: Sequence[int] | None) -> CamResult:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with torch.no_grad():
        logits = classifier(pixels).float()
    chosen = list(range(logits.shape[1])) if classes is None else list(classes)
    layer = _last_stage(classifier)
    maps = np.zeros((pixels.shape[0], len(chosen), *pixels.shape[2:]), dtype=np.float32)
    with GradCAM(model=classifier, target_layers=[layer]) as cam:
        for j, k in enumerate(chosen):
            targets = [ClassifierOutputTarget(k)] * pixels.shape[0]
            maps[:, j] = cam(input_tensor=pixels.clone().requires_grad_(True), targets=targets)
    return CamResult(_unit_scale(maps), logits[:, chosen].numpy(), "gradcam")


def _last_stage(classifier: nn.Module) -> nn.Module:
    """The module whose output is the last feature map (timm's feature_info, else the last conv layer)."""
    backbone = getattr(classifier, "backbone", classifier)
    info = getattr(backbone, "feature_info", None)
    if info:
        entry = info[-1]
        name = entry["module"] if isinstance(entry, dict) else entry.module_name()
        return backbone.get_submodule(name)
    convs = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a convolutional layer; this model has none")
    return convs[-1]


def _unit_scale(maps: np.ndarray) -> np.ndarray:
    low = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - low
    return ((maps - low) / np.where(span > 0, span, 1.0)).astype(np.float32)
