"""`radlab pneumonia evaluate`: the challenge's mAP over IoU 0.40-0.75 for a submission against box labels
(plus the demo's results table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from radlab.core.console import warn
from radlab.core.errors import RadlabDataError
from radlab.core.metrics.detection import RSNA_THRESHOLDS, Comparison, mean_average_precision
from radlab.tasks.pneumonia.formats import read_box_labels, read_submission


def evaluate_files(truth_csv: str | Path, submission_csv: str | Path, comparison: Comparison = ">=") -> dict[str, Any]:
    """{"mAP", "precision_at" per IoU threshold, "images_scored", "images", "iou_comparison"}.

    Every patient of the truth file is scored (one missing from the submission counts as predicting
    nothing); a submitted patient unknown to the truth file is a data error."""
    truth = read_box_labels(truth_csv)
    submitted = read_submission(submission_csv)
    unknown = [p for p in submitted if p not in truth]
    if unknown:
        raise RadlabDataError(
            submission_csv, f"{len(unknown)} patients are not in {Path(truth_csv).name}, e.g. {unknown[0]}"
        )
    missing = [p for p in truth if p not in submitted]
    if missing:
        warn(f"{len(missing)} patients of {Path(truth_csv).name} are not in the submission; scored as no box")
    empty = np.zeros((0, 4))
    patients = list(truth)
    score, per_threshold, scored = mean_average_precision(
        [truth[p] for p in patients],
        [submitted[p].boxes if p in submitted else empty for p in patients],
        [submitted[p].scores if p in submitted else np.zeros(0) for p in patients],
        comparison=comparison,
    )
    return {
        "mAP": None if np.isnan(score) else score,
        "precision_at": {f"{t:.2f}": (None if np.isnan(v) else v) for t, v in per_threshold.items()},
        "images_scored": scored,
        "images": len(patients),
        "iou_comparison": comparison,
    }


def results_table(
    validation: dict[str, Any], test: dict[str, Any], title: str = "RSNA Pneumonia, synthetic data"
) -> Any:
    """The validation fold's mAP and score threshold (a run's metrics) beside a test folder's scores (rich)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("split", "images", "mAP", "score threshold"):
        table.add_column(column, justify="left" if column == "split" else "right")
    table.add_row("validation (fold 1)", "", _fmt(validation.get("map")), _fmt(validation.get("score_threshold")))
    table.add_row("test", str(test["images"]), _fmt(test["mAP"]), "")
    return table


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


__all__ = ["RSNA_THRESHOLDS", "evaluate_files", "results_table"]
