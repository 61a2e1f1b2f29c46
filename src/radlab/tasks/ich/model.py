"""The two ICH networks and running them: the slice classifier (6 logits, pooled embeddings), its
embeddings and probabilities averaged over test-time augmentation (computed once per image and cached on
disk as plain .npy arrays with a JSON index), and the sequence BiLSTM, whose kept epoch snapshots are
run over series of embeddings and their per-slice probabilities averaged."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.data import DataLoader

from radlab.core.infer import iterate_batches, pick_device
from radlab.core.io.atomic import atomic_path, atomic_write_text
from radlab.core.io.cache import file_identity
from radlab.core.models import ImageClassifier, build_image_classifier, load_trained
from radlab.tasks.ich import IchConfig
from radlab.tasks.ich.data import SequenceDataset, SliceDataset, collate_sequences


def build_slice_model(config: IchConfig, initialise: bool = True) -> ImageClassifier:
    """A timm backbone with 6 logits; normalisation with the recipe's window mean/std inside."""
    return build_image_classifier(
        config.model.backbone,
        6,
        config.data.mean,
        config.data.std,
        **config.model.weights(initialise),
    )


def slice_embeddings(model: ImageClassifier, pixels: torch.Tensor) -> torch.Tensor:
    """The pooled features before the classifier (the 2048-d GAP output for ResNeXt-101)."""
    features = model.backbone.forward_features(model.normalise(pixels))
    return model.backbone.forward_head(features, pre_logits=True)


class SliceEmbedder(nn.Module):
    """The slice classifier up to its pooled features, as a module (pixels -> embeddings): what ONNX exports;
    the 6-logit layer on top stays in PyTorch."""

    def __init__(self, model: ImageClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return slice_embeddings(self.model, pixels)


def embedding_size(model: ImageClassifier) -> int:
    return int(model.backbone.num_features)


class SequenceModel(nn.Module):
    """[e, e - prev, e - next] per slice -> 6 logits per slice, for series padded after their end (B, T, 3E)
    with their lengths (B,); the logits are laid out the same way (what lies past a series' end is not a
    prediction).

    Two bidirectional LSTMs with E units each; the output adds both LSTMs' states, a ReLU dense layer on
    each, and the embedding itself (repeated for the two directions): the recipe's residual design, which
    fixes the hidden size to the embedding size. With `packing` (radlab's) the LSTMs see each series alone;
    without, as the recipe's trainlstm.py, each series is pre-padded with zeros to the longest of the batch
    and the LSTMs run over the pads too (the forward direction starts on them)."""

    def __init__(self, embedding_dim: int, packing: bool = True) -> None:
        super().__init__()
        e = embedding_dim
        self.embedding_dim = e
        self.packing = packing
        self.lstm1 = nn.LSTM(3 * e, e, bidirectional=True, batch_first=True)
        self.lstm2 = nn.LSTM(2 * e, e, bidirectional=True, batch_first=True)
        self.dense1 = nn.Linear(2 * e, 2 * e)
        self.dense2 = nn.Linear(2 * e, 2 * e)
        self.out = nn.Linear(2 * e, 6)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.packing:
            return self._pre_padded(features, lengths)
        longest = features.shape[1]
        packed = pack_padded_sequence(features, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h1, _ = self.lstm1(packed)
        h2, _ = self.lstm2(h1)
        h1, _ = pad_packed_sequence(h1, batch_first=True, total_length=longest)
        h2, _ = pad_packed_sequence(h2, batch_first=True, total_length=longest)
        return self.head(features, h1, h2)

    def head(self, features: torch.Tensor, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """Both LSTMs' states (B, T, 2E), their dense layers and the embedding skip -> logits (B, T, 6)."""
        embedding = features[..., : self.embedding_dim]
        hidden = h1 + h2 + F.relu(self.dense1(h1)) + F.relu(self.dense2(h2)) + torch.cat([embedding, embedding], -1)
        return self.out(hidden)

    def run_padded(self, features: torch.Tensor) -> torch.Tensor:
        """The recipe's forward pass over a padded batch as it is, pads included: (B, T, 3E) -> (B, T, 6)."""
        h1, _ = self.lstm1(features)
        h2, _ = self.lstm2(h1)
        return self.head(features, h1, h2)

    def _pre_padded(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Each series moved to the end of its row (zeros before it), run_padded, and the logits moved back."""
        steps = features.shape[1]
        step = torch.arange(steps, device=features.device)[None]
        n = lengths.to(features.device)[:, None]
        real = (step >= steps - n)[..., None]
        moved = _shift(features, steps - n)
        pre = torch.where(real, moved, torch.zeros((), dtype=features.dtype, device=features.device))
        return _shift(self.run_padded(pre), n - steps)


def _shift(values: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
    """Row k of (B, T, C) rotated right by by[k] steps along T (mod T)."""
    steps = values.shape[1]
    source = (torch.arange(steps, device=values.device)[None] - by) % steps
    return values.gather(1, source[..., None].expand(-1, -1, values.shape[-1]))


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
    size = embedding_size(model)
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
            total_e, total_p = torch.zeros(()), torch.zeros(())
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


def embedding_source(config: IchConfig, weights_key: str, paths: Sequence[Path]) -> dict[str, Any]:
    """What a set of embeddings is made from: the slice classifier's weights (`weights_key`, their content
    hash), the slices (their paths in order and file identities: size, times, inode) and the decoding and TTA
    settings. Cached embeddings whose source differs are never used."""
    files = hashlib.blake2b(digest_size=16)
    for path in paths:
        try:
            files.update(f"{path}\0{file_identity(os.stat(path))}\n".encode())
        except OSError:
            files.update(f"{path}\0missing\n".encode())
    data = config.data
    return {
        "weights": weights_key,
        "files": files.hexdigest(),
        "image_size": data.image_size,
        "crop": data.crop,
        "pixel_representation_fix": data.pixel_representation_fix,
        "tta": list(config.embeddings.tta),
    }


def save_embedded(folder: Path, name: str, embedded: Embedded, source: dict[str, Any]) -> None:
    """folder/name.npy (embeddings), name.probs.npy, name.json (images, readable, errors, source), atomically;
    the index is written last, so a crash leaves the old index, whose source no longer matches."""
    for suffix, array in ((".npy", embedded.embeddings), (".probs.npy", embedded.probs)):
        with atomic_path(folder / f"{name}{suffix}") as tmp, open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
    index = {
        "images": embedded.images,
        "readable": embedded.readable.tolist(),
        "errors": {str(k): v for k, v in embedded.errors.items()},
        "source": source,
    }
    atomic_write_text(folder / f"{name}.json", json.dumps(index))


def cached_embedded(folder: Path, name: str, images: list[str], source: dict[str, Any]) -> tuple[Embedded | None, str]:
    """(the cached embeddings of `images`, "") when folder/name.* hold them, made from `source`; else (None,
    why not): missing, damaged (a truncated array, broken JSON), from other weights or settings, or for other
    images or another order of them."""
    if not all((folder / f"{name}{s}").is_file() for s in (".npy", ".probs.npy", ".json")):
        return None, "missing"
    try:
        index = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        embedded = Embedded(
            list(index["images"]),
            np.load(folder / f"{name}.npy", allow_pickle=False),
            np.load(folder / f"{name}.probs.npy", allow_pickle=False),
            np.array(index["readable"], dtype=bool),
            {int(k): str(v) for k, v in index["errors"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, "damaged (truncated or not radlab's)"
    n = len(embedded.images)
    if not (len(embedded.embeddings) == len(embedded.probs) == len(embedded.readable) == n):
        return None, "damaged (its arrays disagree in length)"
    if index.get("source") != source:
        return None, "made from other slice weights, slices or settings"
    if embedded.images != images:
        return None, "made for other slices, or in another order"
    return embedded, ""


def snapshot_path(sequence_dir: Path, epoch: int) -> Path:
    return sequence_dir / "snapshots" / f"epoch_{epoch:02d}.safetensors"


def snapshots(sequence_dir: Path) -> list[Path]:
    return sorted((sequence_dir / "snapshots").glob("epoch_*.safetensors"))


def load_snapshots(sequence_dir: Path, embedding_dim: int, packing: bool = True) -> list[SequenceModel]:
    """Every saved epoch of the sequence model (their predictions are averaged); `packing` as it was trained
    (sequence.packing)."""
    models = []
    for path in snapshots(sequence_dir):
        models.append(load_trained(SequenceModel(embedding_dim, packing), path, "the sequence model"))
    return models


def sequence_probs(
    models: Sequence[SequenceModel], embeddings: np.ndarray, series: Sequence[Sequence[int]], batch_size: int = 8
) -> np.ndarray:
    """(n, 6) probabilities for the rows of `embeddings` that belong to a series, averaged over `models`
    (NaN for rows in no series)."""
    total = np.zeros((len(embeddings), 6), dtype=np.float64)
    seen = np.zeros(len(embeddings), dtype=bool)
    loader = DataLoader(SequenceDataset(embeddings, series), batch_size=batch_size, collate_fn=collate_sequences)
    with torch.inference_mode():
        for batch in loader:
            mask = batch["mask"].numpy()
            rows = batch["rows"].numpy()[mask]
            for model in models:
                probs = torch.sigmoid(model(batch["features"], batch["lengths"]).float()).numpy()
                total[rows] += probs[mask]
            seen[rows] = True
    out = total / max(1, len(models))
    out[~seen] = np.nan
    return out
