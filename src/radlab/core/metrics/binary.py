"""Binary classification metrics: confusion matrix, AUROC (exact, ties averaged), sensitivity, specificity."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _as_binary(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values).ravel()
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1")
    return arr.astype(np.int64)


def binary_confusion(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """2 x 2 counts, rows = truth (0, 1), columns = prediction (0, 1); always 2 x 2, even for one class."""
    truth, pred = _as_binary(y_true, "y_true"), _as_binary(y_pred, "y_pred")
    if truth.shape != pred.shape:
        raise ValueError(f"y_true has {truth.size} values, y_pred {pred.size}")
    return np.bincount(truth * 2 + pred, minlength=4).reshape(2, 2)


def sensitivity_specificity(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[float, float]:
    """(TP / (TP + FN), TN / (TN + FP)); NaN where the class is absent."""
    (tn, fp), (fn, tp) = binary_confusion(y_true, y_pred)
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    return float(sens), float(spec)


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], scores.size]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(scores.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted one half); NaN for one class."""
    truth = _as_binary(y_true, "y_true")
    values = np.asarray(scores, dtype=np.float64).ravel()
    if truth.shape != values.shape:
        raise ValueError(f"y_true has {truth.size} values, scores {values.size}")
    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(values)
    return float((ranks[truth == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
