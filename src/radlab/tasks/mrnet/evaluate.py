"""The MRNet evaluation: AUROC per column (abnormal, ACL, meniscus) matched by row position, and their mean.

JSON keys as on the leaderboard: `Abnormal_AUROC`, `ACL_AUROC`, `Meniscus_AUROC`, `Average_AUROC`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radlab.core.errors import RadlabDataError
from radlab.core.metrics import roc_auc, sensitivity_specificity
from radlab.tasks.mrnet.formats import (
    SPLITS,
    TASKS,
    read_exam_paths,
    read_predictions,
    read_split_labels,
    read_truth_rows,
    resolve_data_root,
)

KEYS = {"abnormal": "Abnormal_AUROC", "acl": "ACL_AUROC", "meniscus": "Meniscus_AUROC"}
PAPER_AUROC = {"abnormal": 0.937, "acl": 0.965, "meniscus": 0.847}
"""The paper's test-set AUROCs (Bien et al. 2018, Table 2), shown beside ours."""


def official_scores(truth: np.ndarray, probs: np.ndarray, tasks: Sequence[str] = TASKS) -> dict[str, float | None]:
    """AUROC per task (None where a column has one class) and `Average_AUROC` over the tasks given."""
    scores: dict[str, float | None] = {}
    for task in TASKS:
        value = roc_auc(truth[:, TASKS.index(task)], probs[:, TASKS.index(task)]) if task in tasks else float("nan")
        scores[KEYS[task]] = None if np.isnan(value) else float(value)
    present = [scores[KEYS[t]] for t in tasks if scores[KEYS[t]] is not None]
    scores["Average_AUROC"] = float(np.mean(present)) if present else None
    return scores


def details(truth: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, dict[str, Any]]:
    """Per task: exams, positives, sensitivity and specificity at `threshold`."""
    out = {}
    for k, task in enumerate(TASKS):
        sens, spec = sensitivity_specificity(truth[:, k], (probs[:, k] > threshold).astype(int))
        out[task] = {
            "n": len(truth),
            "positives": int(truth[:, k].sum()),
            "sensitivity": None if np.isnan(sens) else sens,
            "specificity": None if np.isnan(spec) else spec,
        }
    return out


def load_truth(
    truth: str | Path, data_root: str | Path | None = None, paths_csv: str | Path | None = None
) -> np.ndarray:
    """(n, 3) labels: a headerless `abnormal,acl,meniscus` file, or with `data_root` a split name (or one of
    its official `{split}-{task}.csv` files), ordered by exam id or by the exams of `paths_csv`."""
    if data_root is None:
        return read_truth_rows(truth)
    root = resolve_data_root(data_root)
    name = Path(truth).name
    split = name if name in SPLITS else next((s for s in SPLITS if re.match(rf"{s}-\w+\.csv$", name)), None)
    if split is None:
        raise RadlabDataError(
            truth, f"with --data-root, give a split ({', '.join(SPLITS)}) or a {{split}}-{{task}}.csv"
        )
    ids, labels = read_split_labels(root, split)
    if paths_csv is None:
        return labels
    position = {exam_id: i for i, exam_id in enumerate(ids)}
    order = []
    for exam in read_exam_paths(paths_csv):
        exam_id = Path(exam.key).stem
        if exam_id not in position:
            line = min(line for line, _ in exam.planes.values())
            raise RadlabDataError(paths_csv, f"exam {exam_id} is not in the {split} labels", line)
        order.append(position[exam_id])
    return labels[order]


def evaluate_files(
    truth: str | Path,
    predictions_csv: str | Path,
    data_root: str | Path | None = None,
    paths_csv: str | Path | None = None,
) -> tuple[dict[str, float | None], dict[str, dict[str, Any]]]:
    """Official scores and per-task details; a row-count mismatch is a data error (rows match by position)."""
    labels = load_truth(truth, data_root, paths_csv)
    probs = read_predictions(predictions_csv)
    if len(probs) != len(labels):
        raise RadlabDataError(
            predictions_csv, f"has {len(probs)} rows but the truth has {len(labels)} exams (rows match by position)"
        )
    return official_scores(labels, probs), details(labels, probs)


def results_table(
    scores: dict[str, float | None], per_task: dict[str, dict[str, Any]], title: str = "MRNet, synthetic valid split"
) -> Any:
    """Per label: exams, positives, AUROC, sensitivity and specificity at 0.5, the paper's AUROC (rich)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("label", "exams", "positives", "AUROC", "sens", "spec", "paper (test)"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for task, key in KEYS.items():
        entry = per_task[task]
        cells = (scores[key], entry["sensitivity"], entry["specificity"], PAPER_AUROC[task])
        shown = ["n/a" if value is None else f"{value:.3f}" for value in cells]
        table.add_row(task, str(entry["n"]), str(entry["positives"]), *shown)
    return table
