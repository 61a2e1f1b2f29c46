"""Calibration of binary probabilities: reliability bins, expected calibration error, log-likelihood.

Equal-width bins over [0, 1] on the predicted probability of the positive class (a probability of exactly 1
falls in the last bin); ECE = sum_b (n_b / N) |observed frequency_b - mean probability_b| (Guo et al. 2017,
the binary reliability diagram). Pure NumPy: the report and `radlab calibrate` need no torch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

EPS = 1e-7


class ReliabilityBins(NamedTuple):
    """Per bin (B): its edges (B + 1), case count, mean predicted probability and observed positive frequency
    (NaN for an empty bin)."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    frequency: np.ndarray


def _sums(y_true: ArrayLike, probs: ArrayLike, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    truth = np.asarray(y_true, dtype=np.float64).ravel()
    values = np.asarray(probs, dtype=np.float64).ravel()
    if truth.shape != values.shape:
        raise ValueError(f"y_true has {truth.size} values, probs {values.size}")
    if bins < 1:
        raise ValueError("bins must be at least 1")
    index = np.clip((values * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    return counts, np.bincount(index, values, minlength=bins), np.bincount(index, truth, minlength=bins)


def _bins_of(counts: np.ndarray, prob_sum: np.ndarray, true_sum: np.ndarray) -> ReliabilityBins:
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(counts > 0, prob_sum / counts, np.nan)
        frequency = np.where(counts > 0, true_sum / counts, np.nan)
    edges = np.linspace(0.0, 1.0, counts.size + 1)
    return ReliabilityBins(edges, counts.astype(np.int64), confidence, frequency)


def _ece_of(bins: ReliabilityBins) -> float:
    total = bins.counts.sum()
    if total == 0:
        return float("nan")
    filled = bins.counts > 0
    gaps = np.abs(bins.frequency[filled] - bins.confidence[filled])
    return float((bins.counts[filled] * gaps).sum() / total)


def reliability_bins(y_true: ArrayLike, probs: ArrayLike, bins: int = 15) -> ReliabilityBins:
    """The reliability diagram's bins of one label's 0/1 truth and probabilities."""
    return _bins_of(*_sums(y_true, probs, bins))


def expected_calibration_error(y_true: ArrayLike, probs: ArrayLike, bins: int = 15) -> float:
    """ECE over `bins` equal-width bins; NaN without cases."""
    return _ece_of(reliability_bins(y_true, probs, bins))


def binary_nll(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Mean negative log-likelihood (binary cross-entropy), probabilities clipped to [1e-7, 1 - 1e-7]."""
    truth = np.asarray(y_true, dtype=np.float64).ravel()
    values = np.clip(np.asarray(probs, dtype=np.float64).ravel(), EPS, 1 - EPS)
    if truth.size == 0:
        return float("nan")
    return float(-(truth * np.log(values) + (1 - truth) * np.log1p(-values)).mean())


class CumulativeCalibration:
    """ECE accumulated over batches (MONAI's cumulative-metric style): `add` each batch, then `aggregate`."""

    def __init__(self, bins: int = 15) -> None:
        self.bins = bins
        self.reset()

    def reset(self) -> None:
        self._counts = np.zeros(self.bins)
        self._prob_sum = np.zeros(self.bins)
        self._true_sum = np.zeros(self.bins)

    def add(self, y_true: ArrayLike, probs: ArrayLike) -> None:
        counts, prob_sum, true_sum = _sums(y_true, probs, self.bins)
        self._counts += counts
        self._prob_sum += prob_sum
        self._true_sum += true_sum

    def reliability(self) -> ReliabilityBins:
        return _bins_of(self._counts, self._prob_sum, self._true_sum)

    def aggregate(self) -> float:
        """The ECE of every case added since the last reset."""
        return _ece_of(self.reliability())
