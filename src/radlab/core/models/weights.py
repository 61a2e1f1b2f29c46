"""Weight files: safetensors only (no code can run on load); pickles refused unless explicitly trusted."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import safetensors
import safetensors.torch
import torch

from radlab.core.errors import RadlabDataError
from radlab.core.io.atomic import atomic_path
from radlab.core.provenance.record import check_weights

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl", ".tar")


def save_weights(
    path: str | Path, state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Write a state dict as safetensors, atomically; tensors are copied to contiguous CPU memory."""
    tensors = {key: value.detach().to("cpu", copy=True).contiguous() for key, value in state_dict.items()}
    with atomic_path(path) as tmp:
        safetensors.torch.save_file(tensors, str(tmp), metadata=dict(metadata or {}))


def load_weights(path: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Read a state dict from safetensors (a pickle only with `trust_pickle`, and then tensors only)."""
    path = Path(path)
    if not path.is_file():
        raise RadlabDataError(path, "weights file not found")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise RadlabDataError(path, "is a pickle; refusing to load it (pass --trust-pickle if you trust it)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        return dict(state.get("state_dict", state))
    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except (safetensors.SafetensorError, OSError, ValueError) as exc:
        raise RadlabDataError(path, f"not a readable safetensors file ({exc})") from None


M = TypeVar("M", bound=torch.nn.Module)


def load_trained(model: M, path: str | Path, what: str) -> M:
    """`model` (in eval mode) with the weights a run saved in `path`; weights of other names or shapes are
    one line naming the file, `what` saying what they should have been, and weights whose sha256 is not the
    one the run's environment.json recorded are refused (see `radlab.core.provenance.record`)."""
    check_weights(path)
    state = load_weights(path)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # torch reports size mismatches this way
        shapes = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise RadlabDataError(path, f"weights do not fit {what} ({shapes[0] if shapes else exc})") from None
    if missing or unexpected:
        raise RadlabDataError(path, f"weights do not fit {what} (missing {len(missing)}, unexpected {len(unexpected)})")
    return model.eval()


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata stored in a safetensors header."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (safetensors.SafetensorError, OSError) as exc:
        raise RadlabDataError(path, f"not a readable safetensors file ({exc})") from None
