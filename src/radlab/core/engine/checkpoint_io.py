"""Lightning checkpoints as safetensors: resumable training state that loads without unpickling anything.

Lightning's checkpoint is a nested structure of dicts, lists, tuples, numbers, strings and tensors
(weights, optimizer moments, scheduler and loop counters, callback state). We store every tensor in the
safetensors body and the structure as JSON in its header, so `--resume` reads data, never code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO

from radlab.core.errors import RadlabDataError
from radlab.core.io.atomic import atomic_path

FORMAT = "radlab-checkpoint/1"
_TENSOR, _TUPLE, _ITEMS, _FLOAT = "__tensor__", "__tuple__", "__items__", "__float__"
_MARKERS = {_TENSOR, _TUPLE, _ITEMS, _FLOAT}


def encode_checkpoint(checkpoint: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Split a nested checkpoint into a JSON-able skeleton and a flat dict of CPU tensors."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(checkpoint, tensors, "checkpoint")
    return skeleton, tensors


def decode_checkpoint(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `encode_checkpoint`."""
    return _decode(skeleton, tensors)


def save_checkpoint_file(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write a checkpoint atomically as safetensors with its structure in the header."""
    skeleton, tensors = encode_checkpoint(checkpoint)
    metadata = {"format": FORMAT, "skeleton": json.dumps(skeleton)}
    with atomic_path(path) as tmp:
        safetensors.torch.save_file(tensors, str(tmp), metadata=metadata)


def load_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint_file` (tensors on the CPU)."""
    path = Path(path)
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise RadlabDataError(path, "not a radlab training checkpoint")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        return decode_checkpoint(json.loads(metadata["skeleton"]), tensors)
    except (safetensors.SafetensorError, OSError, json.JSONDecodeError, KeyError) as exc:
        raise RadlabDataError(path, f"unreadable training checkpoint ({exc})") from None


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning CheckpointIO plugin that writes and reads `save_checkpoint_file` files."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        save_checkpoint_file(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: Any = None) -> dict[str, Any]:
        return load_checkpoint_file(path)

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)


def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = str(len(tensors))
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {_TENSOR: key}
    if isinstance(obj, np.ndarray):
        return _encode(torch.from_numpy(np.ascontiguousarray(obj)), tensors, where)
    if isinstance(obj, np.generic):
        return _encode(obj.item(), tensors, where)
    if isinstance(obj, float) and not math.isfinite(obj):
        return {_FLOAT: repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(item, tensors, f"{where}[{i}]") for i, item in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(item, tensors, f"{where}[{i}]") for i, item in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(key, str) for key in obj) and not (obj.keys() & _MARKERS):
            return {key: _encode(value, tensors, f"{where}.{key}") for key, value in obj.items()}
        return {
            _ITEMS: [
                [_encode(key, tensors, f"{where}<key>"), _encode(value, tensors, f"{where}[{key!r}]")]
                for key, value in obj.items()
            ]
        }
    raise TypeError(f"cannot store a {type(obj).__name__} at {where} in a safetensors checkpoint")


def _decode(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(node, list):
        return [_decode(item, tensors) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((marker, value),) = node.items()
        if marker == _TENSOR:
            return tensors[value]
        if marker == _TUPLE:
            return tuple(_decode(item, tensors) for item in value)
        if marker == _ITEMS:
            return {_hashable(_decode(k, tensors)): _decode(v, tensors) for k, v in value}
        if marker == _FLOAT:
            return float(value)
    return {key: _decode(value, tensors) for key, value in node.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(item) for item in key) if isinstance(key, list) else key
