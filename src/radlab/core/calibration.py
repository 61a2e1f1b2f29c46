"""Temperature scaling of a run's probabilities: `radlab calibrate` fits one temperature per label on the
validation cases (RUN/valid_predictions.csv) and keeps it in RUN/calibration.json; predict applies it.

p' = sigmoid(logit(p) / T), T > 0 minimising the validation negative log-likelihood (Guo et al. 2017). A
temperature is monotonic and maps 0.5 to 0.5: rankings (AUROC) and labels at 0.5 never change; log loss and
calibration error do. The official metric of the task is recorded before and after where the task computes
one from the case table alone (`Task.case_metric`: MURA kappa at its threshold, MRNet AUROC, ICH weighted
log loss).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radlab.core.errors import RadlabDataError, RadlabError
from radlab.core.io.atomic import atomic_write_text
from radlab.core.metrics.calibration import EPS, binary_nll, expected_calibration_error

CALIBRATION_FILE = "calibration.json"
BINS = 15
LOG_T_BOUNDS = (-5.0, 5.0)
"""The search interval of log T: temperatures from 0.0067 to 148."""
UNCHANGED_NOTE = "a temperature is monotonic and keeps 0.5 at 0.5: AUROC and labels at 0.5 do not change"


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T), probabilities clipped to [1e-7, 1 - 1e-7] first; NaN stays NaN."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1 - EPS)
    return 1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p)) / temperature))


def fit_temperature(y_true: np.ndarray, probs: np.ndarray) -> float:
    """The T minimising the NLL of apply_temperature(probs, T) (a bounded 1-D search on log T); 1.0 when the
    truth holds one class (no finite optimum)."""
    from scipy.optimize import minimize_scalar

    truth = np.asarray(y_true, dtype=np.float64).ravel()
    if truth.size == 0 or truth.min() == truth.max():
        return 1.0
    result = minimize_scalar(
        lambda log_t: binary_nll(truth, apply_temperature(probs, math.exp(log_t))),
        bounds=LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(math.exp(result.x))


def official_metric(config: dict[str, Any]) -> Callable[[Sequence[str], np.ndarray, np.ndarray], Any]:
    """The run's task's official metric from a case table (its `case_metric`); none for a task without one."""
    from radlab.core.task import get_task

    name = config.get("task")
    task = get_task(name) if isinstance(name, str) else None
    if task is None or task.case_metric is None:
        return lambda labels, truth, probs: {}
    metric = task.case_metric.get()
    return lambda labels, truth, probs: metric(labels, truth, probs, config)


def _finite(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def fit_run(run_dir: str | Path, bins: int = BINS) -> dict[str, Any]:
    """Fit a run's temperatures on its validation cases, write RUN/calibration.json atomically, return it."""
    from radlab.core.config import read_yaml
    from radlab.core.report.cases import CASES_FILE, read_case_table

    run = Path(run_dir)
    cases = run / CASES_FILE
    if not cases.is_file():
        raise RadlabError(f"{run}: no {CASES_FILE} to calibrate on (the task writes none, or retrain to get it)")
    table = read_case_table(cases)
    config = read_yaml(run / "config.yaml", "run config") if (run / "config.yaml").is_file() else {}
    temperatures = [fit_temperature(table.truth[:, k], table.probs[:, k]) for k in range(len(table.labels))]
    after = np.stack([apply_temperature(table.probs[:, k], t) for k, t in enumerate(temperatures)], axis=1)
    per_label = {}
    for k, label in enumerate(table.labels):
        truth, before_k, after_k = table.truth[:, k], table.probs[:, k], after[:, k]
        per_label[label] = {
            "temperature": round(temperatures[k], 6),
            "fitted": bool(truth.size and truth.min() != truth.max()),
            "ece_before": _finite(expected_calibration_error(truth, before_k, bins)),
            "ece_after": _finite(expected_calibration_error(truth, after_k, bins)),
            "nll_before": _finite(binary_nll(truth, before_k)),
            "nll_after": _finite(binary_nll(truth, after_k)),
        }
    metric = official_metric(config)
    record = {
        "method": "temperature scaling, p' = sigmoid(logit(p) / T)",
        "fitted_on": CASES_FILE,
        "cases": len(table.cases),
        "bins": bins,
        "labels": per_label,
        "official": {
            "before": {k: _finite(v) for k, v in metric(table.labels, table.truth, table.probs).items()},
            "after": {k: _finite(v) for k, v in metric(table.labels, table.truth, after).items()},
            "note": UNCHANGED_NOTE,
        },
    }
    atomic_write_text(run / CALIBRATION_FILE, json.dumps(record, indent=2) + "\n")
    return record


def read_calibration(run_dir: str | Path) -> dict[str, Any] | None:
    """RUN/calibration.json, or None when the run is not calibrated."""
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        {label: float(entry["temperature"]) for label, entry in record["labels"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RadlabDataError(path, f"not a radlab calibration file ({exc})") from None
    return dict(record)


def temperatures(run_dir: str | Path) -> dict[str, float]:
    """label: temperature of a calibrated run; empty when it is not calibrated."""
    record = read_calibration(run_dir)
    return {} if record is None else {label: float(e["temperature"]) for label, e in record["labels"].items()}


def calibrated(run_dir: str | Path, label_names: Sequence[str], probs: np.ndarray) -> np.ndarray:
    """`probs` (N, K) over `label_names` with the run's temperatures applied (labels it has none for, and
    runs never calibrated, unchanged): what a task's predict writes."""
    found = temperatures(run_dir)
    if not found:
        return probs
    out = np.array(probs, dtype=np.float64, copy=True)
    for k, label in enumerate(label_names):
        if label in found:
            out[:, k] = apply_temperature(out[:, k], found[label])
    return out


def describe(run: Path, record: dict[str, Any]) -> str:
    """What `radlab calibrate` prints: one line per label, then the official metric before and after."""
    lines = [f"{run}: {record['cases']} validation cases, {record['bins']} bins"]
    for label, e in record["labels"].items():
        fitted = "" if e.get("fitted", True) else " (one class in the truth: T left at 1)"
        lines.append(
            f"  {label}: T {e['temperature']:.4g}{fitted}, ECE {_shown(e['ece_before'])} -> {_shown(e['ece_after'])}, "
            f"NLL {_shown(e['nll_before'])} -> {_shown(e['nll_after'])}"
        )
    official = record["official"]
    for name, before in official["before"].items():
        lines.append(f"  {name}: {_shown(before)} -> {_shown(official['after'][name])}")
    if official["before"]:
        lines.append(f"  ({official['note']})")
    return "\n".join(lines) + "\n"


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def calibrate(path: str | Path, bins: int = BINS) -> str:
    """`radlab calibrate`: a run, or each member of an ensemble folder (predict applies each member's own
    temperatures before averaging); returns what to print."""
    from radlab.core.engine.ensemble import ensemble_members

    folder = Path(path)
    if not folder.is_dir():
        raise RadlabError(f"{folder} is not a run directory")
    return "".join(describe(run, fit_run(run, bins)) for run in ensemble_members(folder))
