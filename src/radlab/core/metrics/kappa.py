"""Cohen's kappa and the interval the MURA paper and leaderboard publish.

The official MURA evaluator reports kappa +- 1.96 * p_o (1 - p_o) / (n (1 - p_e)^2): a variance where a
standard error is meant (no square root). We reproduce it exactly, because it is what the published
numbers mean, and name it for what it is.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from radlab.core.metrics.binary import binary_confusion


class KappaInterval(NamedTuple):
    kappa: float
    lower: float
    upper: float


def _agreement(confusion: np.ndarray) -> tuple[float, float, int]:
    n = int(confusion.sum())
    p_o = float(np.trace(confusion)) / n
    p_e = float((confusion.sum(axis=1) * confusion.sum(axis=0)).sum()) / n / n
    return p_o, p_e, n


def cohen_kappa(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """(p_o - p_e) / (1 - p_e) for binary labels; NaN when undefined (no rows, or p_e = 1)."""
    return kappa_with_official_interval(y_true, y_pred).kappa


def kappa_with_official_interval(y_true: ArrayLike, y_pred: ArrayLike) -> KappaInterval:
    """Kappa with the MURA evaluator's "95% CI": kappa -+ 1.96 * p_o (1 - p_o) / (n (1 - p_e)^2)."""
    confusion = binary_confusion(y_true, y_pred)
    if confusion.sum() == 0:
        return KappaInterval(float("nan"), float("nan"), float("nan"))
    p_o, p_e, n = _agreement(confusion)
    if p_e == 1.0:
        return KappaInterval(float("nan"), float("nan"), float("nan"))
    kappa = (p_o - p_e) / (1 - p_e)
    half_width = 1.96 * (p_o * (1 - p_o)) / (n * (1 - p_e) ** 2)
    return KappaInterval(kappa, kappa - half_width, kappa + half_width)
