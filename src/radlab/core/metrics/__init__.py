"""Metrics as plain NumPy functions, exact and tested against hand-worked cases and scikit-learn."""

from radlab.core.metrics.binary import (
    binary_confusion,
    roc_auc,
    sensitivity_specificity,
)
from radlab.core.metrics.kappa import KappaInterval, cohen_kappa, kappa_with_official_interval

__all__ = [
    "KappaInterval",
    "binary_confusion",
    "cohen_kappa",
    "kappa_with_official_interval",
    "roc_auc",
    "sensitivity_specificity",
]
