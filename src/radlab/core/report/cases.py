"""The validation cases of a run: id, subgroup, input file, truth and probability per label.

Training writes it beside metrics.json (from the kept model), so a report needs neither the data nor a
forward pass to draw ROC curves, confusion matrices and subgroup tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radlab.core.errors import RadlabDataError
from radlab.core.io.atomic import atomic_write_text

CASES_FILE = "valid_predictions.csv"


@dataclass(frozen=True)
class CaseTable:
    """Cases (N) with `truth` and `probs` (N, K) over `labels`, plus an optional group and input per case."""

    cases: list[str]
    labels: list[str]
    truth: np.ndarray
    probs: np.ndarray
    groups: list[str]
    inputs: list[str]


def write_case_table(
    path: str | Path,
    cases: Sequence[str],
    labels: Sequence[str],
    truth: np.ndarray,
    probs: np.ndarray,
    groups: Sequence[str] | None = None,
    inputs: Sequence[str] | None = None,
) -> None:
    """Write the table as CSV (columns case, group, input, true_<label>..., prob_<label>...), atomically."""
    truth = np.asarray(truth).reshape(len(cases), -1)
    probs = np.asarray(probs, dtype=float).reshape(len(cases), -1)
    frame = pd.DataFrame({"case": list(cases)})
    frame["group"] = list(groups) if groups is not None else ""
    frame["input"] = [str(p) for p in inputs] if inputs is not None else ""
    for k, label in enumerate(labels):
        frame[f"true_{label}"] = truth[:, k].astype(int)
    for k, label in enumerate(labels):
        frame[f"prob_{label}"] = probs[:, k]
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.6g", lineterminator="\n"))


def read_case_table(path: str | Path) -> CaseTable:
    """Read a table written by write_case_table."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"case": str, "group": str, "input": str}, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise RadlabDataError(path, f"unreadable case table ({exc})") from None
    labels = [c.removeprefix("true_") for c in frame.columns if c.startswith("true_")]
    if "case" not in frame.columns or not labels or any(f"prob_{label}" not in frame for label in labels):
        raise RadlabDataError(path, "not a radlab case table (expected case, true_<label>, prob_<label> columns)")
    return CaseTable(
        cases=frame["case"].tolist(),
        labels=labels,
        truth=frame[[f"true_{label}" for label in labels]].to_numpy(dtype=int),
        probs=frame[[f"prob_{label}" for label in labels]].to_numpy(dtype=float),
        groups=frame["group"].tolist() if "group" in frame else [""] * len(frame),
        inputs=frame["input"].tolist() if "input" in frame else [""] * len(frame),
    )


def confident_cases(table: CaseTable, label: str, threshold: float, count: int) -> tuple[list[int], list[int]]:
    """Rows of the most confident right and most confident wrong calls for one label (confidence = |p - t|)."""
    k = table.labels.index(label)
    predicted = (table.probs[:, k] > threshold).astype(int)
    confidence = np.abs(table.probs[:, k] - threshold)
    order = np.argsort(-confidence, kind="stable")
    right = [int(i) for i in order if predicted[i] == table.truth[i, k]][:count]
    wrong = [int(i) for i in order if predicted[i] != table.truth[i, k]][:count]
    return right, wrong
