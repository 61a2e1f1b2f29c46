"""From raw detections to submitted boxes: back to original pixels, relative pruning, the score threshold
(optionally weighted by the global head), and the threshold sweep that picks it on validation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radlab.core.metrics.detection import Comparison, mean_average_precision
from radlab.tasks.pneumonia.data import xyxy_to_xywh


def to_original(boxes_xyxy: np.ndarray, input_size: int, original: tuple[int, int]) -> np.ndarray:
    """Boxes predicted on the S x S input -> (x, y, w, h) in the original image's pixels."""
    height, width = original
    scale = np.array([width / input_size, height / input_size] * 2)
    return xyxy_to_xywh(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4) * scale)


def select(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, relative: float, weight: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Drop boxes below `relative` x the image's top score, then keep those whose score (sqrt(score x weight)
    when the global head weighs in) exceeds `threshold`."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return np.zeros((0, 4)), scores
    keep = scores >= relative * scores.max()
    adjusted = np.sqrt(scores * weight) if weight is not None else scores
    keep &= adjusted > threshold
    return boxes[keep], adjusted[keep]


def threshold_sweep(
    truth: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    thresholds: Sequence[float],
    relative: float,
    comparison: Comparison = ">=",
    weights: Sequence[float] | None = None,
) -> dict[float, float]:
    """mAP at each score threshold."""
    table = {}
    for threshold in thresholds:
        chosen = [
            select(b, s, threshold, relative, None if weights is None else weights[i])
            for i, (b, s) in enumerate(zip(boxes, scores, strict=True))
        ]
        value, _, _ = mean_average_precision(
            truth, [c[0] for c in chosen], [c[1] for c in chosen], comparison=comparison
        )
        table[float(threshold)] = value
    return table


def best_threshold(table: dict[float, float]) -> tuple[float, float]:
    """(threshold, mAP) with the highest mAP (the lowest threshold among ties); NaN-safe."""
    finite = {t: v for t, v in table.items() if not np.isnan(v)}
    if not finite:
        return next(iter(table)), float("nan")
    top = max(finite.values())
    return min(t for t, v in finite.items() if v == top), top
