"""The ICH metric: multi-label log loss weighted 2 for "any" and 1 for each subtype, normalised by the sum of
weights (scikit-learn's log_loss with those sample weights), and the plain log loss per subtype."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radlab.core.console import warn
from radlab.core.errors import RadlabDataError
from radlab.tasks.ich.formats import SUBTYPES, WEIGHTS, read_labels, read_submission

EPS = np.finfo(np.float64).eps


def weighted_log_loss(
    labels: np.ndarray, probs: np.ndarray, weights: np.ndarray = WEIGHTS, clip: float | None = None
) -> float:
    """sum_i sum_j w_j BCE(y_ij, p_ij) / (n * sum_j w_j), probabilities clipped to [clip, 1 - clip] (float64
    eps when None)."""
    low = EPS if clip is None else clip
    y = np.asarray(labels, dtype=np.float64).reshape(-1, len(weights))
    p = np.clip(np.asarray(probs, dtype=np.float64).reshape(-1, len(weights)), low, 1 - low)
    bce = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    return float((bce * weights).sum() / (len(y) * weights.sum()))


def scores(labels: np.ndarray, probs: np.ndarray, clip: float | None = None) -> dict[str, float]:
    """{"weighted_log_loss", "<subtype>_log_loss" ...}; `clip` as in weighted_log_loss (the recipe scored its
    validation at 1e-5, train.validation_clip)."""
    out = {"weighted_log_loss": weighted_log_loss(labels, probs, clip=clip)}
    for j, subtype in enumerate(SUBTYPES):
        out[f"{subtype}_log_loss"] = weighted_log_loss(labels[:, [j]], probs[:, [j]], np.ones(1), clip)
    return out


def evaluate_files(truth_csv: str | Path, submission_csv: str | Path) -> dict[str, Any]:
    """Scores of a submission on the images of the truth file it predicts (unpredicted ones are left out
    with a warning; a predicted image unknown to the truth file is a data error)."""
    images, labels = read_labels(truth_csv)
    predicted, probs = read_submission(submission_csv)
    position = {image: i for i, image in enumerate(images)}
    unknown = [image for image in predicted if image not in position]
    if unknown:
        raise RadlabDataError(
            submission_csv, f"{len(unknown)} images are not in {Path(truth_csv).name}, e.g. {unknown[0]}"
        )
    if len(predicted) < len(images):
        warn(f"{len(images) - len(predicted)} images of {Path(truth_csv).name} are not predicted; left out")
    if not predicted:
        raise RadlabDataError(submission_csv, "no predictions in this file")
    result: dict[str, Any] = scores(labels[[position[i] for i in predicted]], probs)
    result["images"] = len(predicted)
    return result


def case_metric(
    labels: Sequence[str], truth: np.ndarray, probs: np.ndarray, config: dict[str, Any]
) -> dict[str, float]:
    """The weighted log loss of a validation case table at the clip `ich predict` writes (1e-5; what `radlab
    calibrate` reports before and after)."""
    order = [list(labels).index(subtype) for subtype in SUBTYPES]
    return {"weighted_log_loss": weighted_log_loss(truth[:, order], probs[:, order], clip=1e-5)}
