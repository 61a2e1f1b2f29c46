"""Detection precision averaged over IoU thresholds, as the RSNA Pneumonia challenge scores it.

Per image and threshold t: predictions in descending confidence; each ground-truth box, in its given order,
takes the first unmatched prediction with IoU >= t (or > t) as a true positive; unmatched ground truth are
false negatives, unmatched predictions false positives; precision = TP / (TP + FP + FN). The image score is
the mean over thresholds; an image with neither ground truth nor prediction is left out, one with
predictions but no ground truth scores 0. The final score is the mean over scored images. Boxes are
(x, y, width, height) on continuous coordinates (no +1 pixel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

RSNA_THRESHOLDS = tuple(round(0.40 + 0.05 * i, 2) for i in range(8))
Comparison = Literal[">=", ">"]


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every (x, y, w, h) box of `a` with every box of `b`; 0 where a box has no area."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    width = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    height = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    intersection = width * height
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, 0.0)
    return iou


def image_precision(
    truth: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray,
    thresholds: Sequence[float] = RSNA_THRESHOLDS,
    comparison: Comparison = ">=",
) -> float | None:
    """The image's precision averaged over thresholds, or None when it has no truth and no prediction."""
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, 4)
    if len(truth) == 0 and len(predicted) == 0:
        return None
    if len(truth) == 0 or len(predicted) == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    iou = iou_matrix(truth, predicted[order])
    precisions = []
    for threshold in thresholds:
        hits = iou >= threshold if comparison == ">=" else iou > threshold
        matched = np.zeros(len(predicted), dtype=bool)
        tp = 0
        for row in hits:
            candidates = np.flatnonzero(row & ~matched)
            if len(candidates):
                matched[candidates[0]] = True
                tp += 1
        fn = len(truth) - tp
        fp = len(predicted) - tp
        precisions.append(tp / (tp + fp + fn))
    return float(np.mean(precisions))


def mean_average_precision(
    truth: Sequence[np.ndarray],
    predicted: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    thresholds: Sequence[float] = RSNA_THRESHOLDS,
    comparison: Comparison = ">=",
) -> tuple[float, dict[float, float], int]:
    """(mean over scored images, {threshold: mean precision at it}, number of scored images)."""
    per_image = []
    per_threshold: dict[float, list[float]] = {t: [] for t in thresholds}
    for gt, boxes, conf in zip(truth, predicted, scores, strict=True):
        score = image_precision(gt, boxes, conf, thresholds, comparison)
        if score is None:
            continue
        per_image.append(score)
        for t in thresholds:
            at_t = image_precision(gt, boxes, conf, (t,), comparison)
            per_threshold[t].append(float("nan") if at_t is None else at_t)
    if not per_image:
        return float("nan"), {t: float("nan") for t in thresholds}, 0
    return float(np.mean(per_image)), {t: float(np.mean(v)) for t, v in per_threshold.items()}, len(per_image)
