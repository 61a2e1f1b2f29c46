"""Run sequence models over series of embeddings and average their per-slice probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from radlab.core.models import load_weights
from radlab.tasks.ich.data import SequenceDataset, collate_sequences
from radlab.tasks.ich.model import SequenceModel
from radlab.tasks.ich.recipe import snapshots


def load_snapshots(sequence_dir: Path, embedding_dim: int) -> list[SequenceModel]:
    """Every saved epoch of the sequence model (their predictions are averaged)."""
    models = []
    for path in snapshots(sequence_dir):
        model = SequenceModel(embedding_dim)
        model.load_state_dict(load_weights(path))
        models.append(model.eval())
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
