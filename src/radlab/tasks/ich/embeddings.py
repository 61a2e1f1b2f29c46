"""Slice embeddings (and the slice classifier's own probabilities), averaged over test-time augmentation,
computed once per image and cached on disk as plain .npy arrays with a JSON index."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radlab.core.infer import iterate_batches, pick_device
from radlab.core.io.atomic import atomic_path, atomic_write_text
from radlab.core.models import ImageClassifier
from radlab.tasks.ich.config import IchConfig
from radlab.tasks.ich.data import SliceDataset
from radlab.tasks.ich.model import SliceEmbedder

TTA: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda x: x,
    "hflip": lambda x: x.flip(-1),
    "transpose": lambda x: x.transpose(-1, -2),
}


@dataclass
class Embedded:
    """Per image (rows in the order given): embeddings (n, E), classifier probabilities (n, 6), readable."""

    images: list[str]
    embeddings: np.ndarray
    probs: np.ndarray
    readable: np.ndarray
    errors: dict[int, str]


def embed_slices(
    model: ImageClassifier,
    paths: Sequence[Path],
    config: IchConfig,
    *,
    batch_size: int | None = None,
    num_workers: int | None = None,
    device: str = "auto",
    description: str = "embedding slices",
    embedder: torch.nn.Module | None = None,
) -> Embedded:
    """Decode each slice once, run every TTA variant on it, and average embeddings and probabilities.

    `embedder` (pixels -> embeddings; an ONNX Runtime session) replaces the model's own trunk; the 6-logit
    layer is always the model's."""
    target = pick_device(device)
    model = model.to(target).eval().to(memory_format=torch.channels_last)
    embed = SliceEmbedder(model) if embedder is None else embedder
    data = config.data
    dataset = SliceDataset(
        paths, data.image_size, crop=data.crop, fix=data.pixel_representation_fix, cache_dir=data.cache_dir
    )
    size = int(model.backbone.num_features)
    embeddings = np.zeros((len(paths), size), dtype=np.float32)
    probs = np.zeros((len(paths), 6), dtype=np.float32)
    readable = np.zeros(len(paths), dtype=bool)
    errors: dict[int, str] = {}
    variants = [TTA[name] for name in config.embeddings.tta]
    batches = iterate_batches(
        dataset,
        batch_size=batch_size or config.embeddings.batch_size,
        num_workers=config.data.num_workers if num_workers is None else num_workers,
        description=description,
    )
    with torch.inference_mode():
        for batch in batches:
            index = batch["index"].numpy()
            images = batch["image"].to(target).contiguous(memory_format=torch.channels_last)
            total_e, total_p = 0.0, 0.0
            for variant in variants:
                features = embed(variant(images)).to(target)
                total_e = total_e + features.float()
                total_p = total_p + torch.sigmoid(model.backbone.get_classifier()(features).float())
            embeddings[index] = (total_e / len(variants)).cpu().numpy()
            probs[index] = (total_p / len(variants)).cpu().numpy()
            for i, error in zip(index, batch["error"], strict=True):
                readable[i] = not error
                if error:
                    errors[int(i)] = error
    return Embedded([p.stem for p in paths], embeddings, probs, readable, errors)


def save_embedded(folder: Path, name: str, embedded: Embedded) -> None:
    """folder/name.npy (embeddings), name.probs.npy, name.json (images, readable, errors), atomically."""
    for suffix, array in ((".npy", embedded.embeddings), (".probs.npy", embedded.probs)):
        with atomic_path(folder / f"{name}{suffix}") as tmp, open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
    index = {
        "images": embedded.images,
        "readable": embedded.readable.tolist(),
        "errors": {str(k): v for k, v in embedded.errors.items()},
    }
    atomic_write_text(folder / f"{name}.json", json.dumps(index))


def load_embedded(folder: Path, name: str) -> Embedded:
    index = json.loads((folder / f"{name}.json").read_text())
    return Embedded(
        index["images"],
        np.load(folder / f"{name}.npy", allow_pickle=False),
        np.load(folder / f"{name}.probs.npy", allow_pickle=False),
        np.array(index["readable"], dtype=bool),
        {int(k): v for k, v in index["errors"].items()},
    )


def has_embedded(folder: Path, name: str) -> bool:
    return all((folder / f"{name}{s}").is_file() for s in (".npy", ".probs.npy", ".json"))
