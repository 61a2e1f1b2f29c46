"""Image probabilities -> study probabilities, accumulated batch by batch (bounded memory)."""

from __future__ import annotations

from typing import Literal

import numpy as np

Pooling = Literal["mean", "max"]


class StudyPooler:
    """Running mean (the paper) or max of image probabilities per study; unreadable images are left out."""

    def __init__(self, n_studies: int, pooling: Pooling = "mean") -> None:
        if pooling not in ("mean", "max"):
            raise ValueError(f"unknown pooling {pooling!r}")
        self.pooling = pooling
        self.total = np.zeros(n_studies, dtype=np.float64)
        self.count = np.zeros(n_studies, dtype=np.int64)

    def add(self, studies: np.ndarray, probs: np.ndarray, readable: np.ndarray | None = None) -> None:
        """Add one batch: study index and probability per image, and which images decoded."""
        studies = np.asarray(studies, dtype=np.int64)
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        if readable is not None:
            keep = np.asarray(readable, dtype=bool)
            studies, probs = studies[keep], probs[keep]
        if self.pooling == "mean":
            np.add.at(self.total, studies, probs)
        else:
            np.maximum.at(self.total, studies, probs)
        np.add.at(self.count, studies, 1)

    @property
    def has_image(self) -> np.ndarray:
        """Studies with at least one readable image."""
        return self.count > 0

    def probabilities(self) -> np.ndarray:
        """Pooled probability per study (NaN for a study with no readable image)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled = self.total / self.count if self.pooling == "mean" else self.total.copy()
        pooled[self.count == 0] = np.nan
        return pooled
