"""Per task, a logistic regression over the planes' logits (the MRNet paper's second stage).

One regression is fitted for every non-empty subset of the trained planes, so an exam with a missing or
unreadable plane is still predicted from the planes it has. Coefficients are stored as plain JSON (no
pickle): {"tasks": {task: {"axial+coronal+sagittal": {"planes", "coef", "intercept"}, ...}},
"prevalence": {task: p}}.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from radlab.tasks.mrnet.formats import PLANES, TASKS

Logits = Mapping[tuple[str, str], np.ndarray]


def subset_key(planes: Sequence[str]) -> str:
    return "+".join(p for p in PLANES if p in planes)


def fit_fusion(logits: Logits, labels: np.ndarray, tasks: Sequence[str], planes: Sequence[str], source: str) -> dict:
    """Fit the regressions on (n,) logits per (task, plane) against (n, 3) labels."""
    fusion: dict[str, Any] = {"source": source, "planes": list(planes), "tasks": {}, "prevalence": {}}
    for task in TASKS:
        fusion["prevalence"][task] = float(labels[:, TASKS.index(task)].mean()) if len(labels) else 0.5
    for task in tasks:
        y = labels[:, TASKS.index(task)]
        models = {}
        for size in range(len(planes), 0, -1):
            for subset in itertools.combinations(planes, size):
                x = np.stack([logits[(task, plane)] for plane in subset], axis=1)
                keep = np.isfinite(x).all(axis=1)
                models[subset_key(subset)] = _fit(x[keep], y[keep], list(subset))
        fusion["tasks"][task] = models
    return fusion


def _fit(x: np.ndarray, y: np.ndarray, planes: list[str]) -> dict[str, Any]:
    """A regularised logistic regression, C chosen by cross-validated log loss when both classes allow it."""
    minority = int(min(y.sum(), len(y) - y.sum())) if len(y) else 0
    if minority == 0:
        prevalence = float(np.clip(y.mean() if len(y) else 0.5, 1e-4, 1 - 1e-4))
        return {"planes": planes, "coef": [0.0] * len(planes), "intercept": math.log(prevalence / (1 - prevalence))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if minority >= 2:
            search = GridSearchCV(
                LogisticRegression(), {"C": [0.01, 0.1, 1.0, 10.0]}, cv=min(3, minority), scoring="neg_log_loss"
            )
            model = search.fit(x, y).best_estimator_
        else:
            model = LogisticRegression().fit(x, y)
    return {"planes": planes, "coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0])}


def apply_fusion(fusion: Mapping[str, Any], logits: Logits, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) probabilities and a (n,) mask of exams that had at least one usable plane.

    A task the run has no model for, or an exam with no usable plane, gets the training prevalence."""
    probs = np.tile([fusion["prevalence"][task] for task in TASKS], (n, 1)).astype(np.float64)
    usable = np.zeros(n, dtype=bool)
    planes = fusion["planes"]
    for task, models in fusion["tasks"].items():
        column = TASKS.index(task)
        matrix = np.stack([logits.get((task, plane), np.full(n, np.nan)) for plane in planes], axis=1)
        present = np.isfinite(matrix)
        usable |= present.any(axis=1)
        for exam in range(n):
            have = [plane for plane, ok in zip(planes, present[exam], strict=True) if ok]
            if not have:
                continue
            model = models[subset_key(have)]
            z = model["intercept"] + sum(
                c * matrix[exam, planes.index(p)] for c, p in zip(model["coef"], model["planes"], strict=True)
            )
            probs[exam, column] = 1.0 / (1.0 + math.exp(-z))
    return probs, usable
