"""The official MURA evaluator, reproduced, plus the metrics the paper reports beside it.

Official behaviour (stanfordmlgroup.github.io competitions/mura/evaluate.py): predictions are read headerless
as `Study,Model`, a missing trailing `/` is appended, they are inner-joined to the annotations (a predicted
study missing from the annotations fails the run; an unpredicted study is simply left out), and Cohen's
kappa with its published interval (no square root, see radlab.core.metrics.kappa) is computed per body part
(upper-case substring of the study path) and overall. Test annotations hold three radiologists' labels;
the gold label is their majority. Where the official script would crash (a body part with no study, or
one class everywhere) we print null and warn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radlab.core.console import warn
from radlab.core.errors import RadlabDataError
from radlab.core.metrics import (
    binary_confusion,
    cohen_kappa,
    kappa_with_official_interval,
    roc_auc,
    sensitivity_specificity,
)
from radlab.tasks.mura.formats import (
    read_labeled_studies,
    read_predictions,
    read_probabilities,
)

BODY_PARTS = ("Elbow", "Finger", "Forearm", "Hand", "Humerus", "Shoulder", "Wrist")
GROUPS = (*BODY_PARTS, "Overall")


def group_mask(studies: Sequence[str], group: str) -> np.ndarray:
    """The official membership rule: the upper-case body part is a substring of the path ("/" = all)."""
    needle = "/" if group == "Overall" else group.upper()
    return np.array([needle in study for study in studies], dtype=bool)


def official_scores(studies: Sequence[str], truth: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """`<Part>_Mean/_Lower/_Upper` for each body part, then `Overall_*`, in the official key order."""
    scores: dict[str, float | None] = {}
    for group in GROUPS:
        mask = group_mask(studies, group)
        interval = kappa_with_official_interval(truth[mask], predicted[mask])
        if math.isnan(interval.kappa):
            warn(f"{group}: kappa undefined ({int(mask.sum())} studies, one class only); reported as null")
        for suffix, value in zip(("Mean", "Lower", "Upper"), interval, strict=True):
            scores[f"{group}_{suffix}"] = None if math.isnan(value) else value
    return scores


def detailed_metrics(
    studies: Sequence[str], truth: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None = None
) -> dict[str, dict[str, Any]]:
    """Per body part and overall: n, kappa with interval, sensitivity, specificity, confusion, AUROC."""
    details: dict[str, dict[str, Any]] = {}
    for group in GROUPS:
        mask = group_mask(studies, group)
        if not mask.any():
            continue
        (tn, fp), (fn, tp) = binary_confusion(truth[mask], predicted[mask]).tolist()
        kappa, lower, upper = kappa_with_official_interval(truth[mask], predicted[mask])
        sens, spec = sensitivity_specificity(truth[mask], predicted[mask])
        entry: dict[str, Any] = {
            "n": int(mask.sum()),
            "kappa": _finite(kappa),
            "kappa_lower": _finite(lower),
            "kappa_upper": _finite(upper),
            "sensitivity": _finite(sens),
            "specificity": _finite(spec),
            "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        }
        if probabilities is not None:
            entry["auroc"] = _finite(roc_auc(truth[mask], probabilities[mask]))
        details[group] = entry
    return details


def evaluate_files(
    truth_csv: str | Path, predictions_csv: str | Path, probabilities_csv: str | Path | None = None
) -> tuple[dict[str, float | None], dict[str, dict[str, Any]]]:
    """Official scores and detailed metrics for a truth file and a CodaLab predictions file."""
    truth = _truth_table(truth_csv)
    predictions = read_predictions(predictions_csv)
    if not predictions:
        raise RadlabDataError(predictions_csv, "no predictions in this file")
    seen: set[str] = set()
    for row in predictions:
        if row.study not in truth:
            raise RadlabDataError(predictions_csv, f"study {row.study} is not in {Path(truth_csv).name}", row.line)
        if row.study in seen:
            warn(f"{predictions_csv}:{row.line}: study {row.study} predicted twice; counted twice, as officially")
        seen.add(row.study)
    if len(seen) < len(truth):
        warn(f"{len(truth) - len(seen)} studies of {Path(truth_csv).name} are not predicted; left out, as officially")
    studies = [row.study for row in predictions]
    gold = np.array([truth[s] for s in studies], dtype=np.int64)
    predicted = np.array([row.label for row in predictions], dtype=np.int64)
    probabilities = _probabilities(probabilities_csv, studies) if probabilities_csv else None
    return official_scores(studies, gold, predicted), detailed_metrics(studies, gold, predicted, probabilities)


def _truth_table(truth_csv: str | Path) -> dict[str, int]:
    truth: dict[str, int] = {}
    for row in read_labeled_studies(truth_csv):
        if truth.setdefault(row.study, row.label) != row.label:
            raise RadlabDataError(truth_csv, f"study {row.study} is labelled both 0 and 1", row.line)
    return truth


def _probabilities(csv_path: str | Path, studies: Sequence[str]) -> np.ndarray:
    table: dict[str, float] = {}
    first: dict[str, int] = {}
    for row in read_probabilities(csv_path):
        if row.study in table:
            raise RadlabDataError(
                csv_path, f"study {row.study} is listed twice (first on line {first[row.study]})", row.line
            )
        table[row.study], first[row.study] = row.probability, row.line
    missing = [s for s in studies if s not in table]
    if missing:
        raise RadlabDataError(csv_path, f"no probability for {len(missing)} predicted studies, e.g. {missing[0]}")
    return np.array([table[s] for s in studies], dtype=np.float64)


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def results_table(details: dict[str, dict[str, Any]], title: str = "MURA, study level") -> Any:
    """Per body part: studies, kappa with the official interval, sensitivity, specificity, AUROC (rich)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("part", "n", "kappa", "interval", "sens", "spec", "AUROC"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for group, entry in details.items():
        interval = "" if entry["kappa"] is None else f"{entry['kappa_lower']:.3f}..{entry['kappa_upper']:.3f}"
        cells = (entry["kappa"], entry["sensitivity"], entry["specificity"], entry.get("auroc"))
        shown = ["n/a" if value is None else f"{value:.3f}" for value in cells]
        table.add_row(group, str(entry["n"]), shown[0], interval, *shown[1:])
    return table


def case_metric(
    labels: Sequence[str], truth: np.ndarray, probs: np.ndarray, config: dict[str, Any]
) -> dict[str, float]:
    """Study-level kappa at the run's threshold, from its validation case table (what `radlab calibrate`
    reports before and after)."""
    threshold = float((config.get("predict") or {}).get("threshold", 0.5))
    return {f"kappa@{threshold:g}": float(cohen_kappa(truth[:, 0], probs[:, 0] > threshold))}
