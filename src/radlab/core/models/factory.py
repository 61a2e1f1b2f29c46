"""Create a backbone by name through timm, with pretrained weights from the hub or from a local file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
import torchvision
from torch import nn

from radlab.core.errors import RadlabConfigError, RadlabDataError, RadlabError
from radlab.core.models.weights import PICKLE_SUFFIXES, SAFE_SUFFIXES


def create_backbone(
    name: str,
    *,
    num_classes: int,
    pretrained: bool = False,
    weights_file: str | Path | None = None,
    trust_pickle: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """A timm model with `num_classes` outputs (0: pooled features only).

    `weights_file` (a .safetensors file; a pickle only with `trust_pickle`) takes precedence over the
    hub; its classifier is dropped when the class count differs, as timm does for hub weights.
    """
    if not timm.is_model(name):
        raise RadlabConfigError(f"unknown backbone {name!r} (any name from timm.list_models() works)")
    if weights_file is not None:
        path = Path(weights_file).expanduser()
        _check_weights_file(path, trust_pickle)
        try:
            return timm.create_model(
                name,
                pretrained=True,
                pretrained_cfg_overlay={"file": str(path)},
                num_classes=num_classes,
                **kwargs,
            )
        except (RuntimeError, KeyError, ValueError) as exc:
            raise RadlabDataError(path, f"weights do not fit backbone {name!r}: {exc}") from None
    if pretrained:
        try:
            return timm.create_model(name, pretrained=True, num_classes=num_classes, **kwargs)
        except Exception as exc:
            raise RadlabError(
                f"could not fetch pretrained weights for {name!r} ({type(exc).__name__}); "
                "set model.weights_file=/path/to/weights.safetensors or model.pretrained=false"
            ) from None
    return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)


def _check_weights_file(path: Path, trust_pickle: bool) -> None:
    if not path.is_file():
        raise RadlabDataError(path, "weights file not found")
    suffix = path.suffix.lower()
    if suffix in SAFE_SUFFIXES:
        return
    if suffix in PICKLE_SUFFIXES and not trust_pickle:
        raise RadlabDataError(
            path,
            "is a pickle; radlab does not unpickle files it is handed. Convert it to .safetensors, "
            "or pass --trust-pickle (model.trust_pickle=true) if you trust its origin",
        )
    if suffix not in PICKLE_SUFFIXES:
        raise RadlabDataError(path, f"unknown weights format {suffix!r} (expected .safetensors)")


class _PooledFeatures(nn.Module):
    """A torchvision trunk followed by global average pooling: images -> (B, num_features)."""

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.pool = nn.AdaptiveAvgPool2d(1)
        with torch.no_grad():
            self.num_features = int(self.trunk(torch.zeros(1, 3, 64, 64)).shape[1])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(self.trunk(images)).flatten(1)


def create_feature_extractor(
    name: str,
    *,
    pretrained: bool = False,
    weights_file: str | Path | None = None,
    trust_pickle: bool = False,
) -> nn.Module:
    """Images -> pooled features (B, F), with F in `.num_features`: a timm model without its classifier, or a
    torchvision classification model's convolutional trunk (AlexNet, VGG, ResNet, DenseNet, ...) plus global
    average pooling. Weights come from the hub (pretrained) or a local file."""
    if timm.is_model(name):
        return create_backbone(
            name, num_classes=0, pretrained=pretrained, weights_file=weights_file, trust_pickle=trust_pickle
        )
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise RadlabConfigError(f"unknown backbone {name!r} (a timm or torchvision classification model name)")
    model = torchvision.models.get_model(name, weights=None)
    if weights_file is not None:
        path = Path(weights_file).expanduser()
        _check_weights_file(path, trust_pickle)
        from radlab.core.models.weights import load_weights

        state = load_weights(path, trust_pickle=trust_pickle)
        missing, _ = model.load_state_dict(state, strict=False)
        if any(not key.startswith(("fc.", "classifier.")) for key in missing):
            raise RadlabDataError(path, f"weights do not fit backbone {name!r} (missing {missing[:3]} ...)")
    elif pretrained:
        try:
            model = torchvision.models.get_model(name, weights="DEFAULT")
        except Exception as exc:
            raise RadlabError(
                f"could not fetch pretrained weights for {name!r} ({type(exc).__name__}); "
                "set model.weights_file=/path/to/weights.safetensors or model.pretrained=false"
            ) from None
    trunk = getattr(model, "features", None)
    if trunk is None:
        children = dict(model.named_children())
        trunk = nn.Sequential(*(m for n, m in children.items() if n not in ("avgpool", "fc", "classifier")))
    return _PooledFeatures(trunk)
