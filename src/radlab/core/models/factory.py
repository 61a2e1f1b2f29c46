"""Create a backbone by name through timm, with pretrained weights from the hub or from a local file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
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
            "or set model.trust_pickle=true if you trust its origin",
        )
    if suffix not in PICKLE_SUFFIXES:
        raise RadlabDataError(path, f"unknown weights format {suffix!r} (expected .safetensors)")
