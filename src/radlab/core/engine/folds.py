"""K-fold splits: stratified on a label, optionally grouped (no patient in two folds)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from radlab.core.errors import RadlabConfigError


def stratified_folds(
    labels: np.ndarray, k: int, seed: int = 0, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train indices, held-out indices) pairs; every index is held out exactly once. Fewer items (or
    patients, with `groups`) than folds is refused in one line."""
    labels = np.asarray(labels)
    units = len(labels) if groups is None else len(np.unique(groups))
    if units < k:
        kind = "items" if groups is None else "patients"
        raise RadlabConfigError(f"only {units} {kind}: too few to split into {k} folds; lower train.folds")
    if groups is None:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return [(a, b) for a, b in splitter.split(np.zeros(len(labels)), labels)]
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(a, b) for a, b in splitter.split(np.zeros(len(labels)), labels, groups)]
