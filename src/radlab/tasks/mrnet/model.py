"""The MRNet model: unit networks (a backbone on every slice, global average pooling, max over slices, a
linear head), then per task a logistic regression over the planes' logits (the paper's second stage).

A *unit* is what one training run produces: one network for one plane, answering one task (the paper's
nine networks) or all three (the per-plane layout, three networks).

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
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import AllowInfNan, Field, model_validator
from torch import nn

from radlab.core.config import StrictModel
from radlab.core.engine.run_dir import RunDir
from radlab.core.infer import engine_model
from radlab.core.models import create_feature_extractor, load_trained
from radlab.core.models.pooling import segment_max
from radlab.tasks.mrnet import PLANES, SERIES_MEAN, SERIES_STD, TASKS, MRNetConfig

FiniteFloat = Annotated[float, AllowInfNan(False)]
Logits = Mapping[tuple[str, str], np.ndarray]
"""(n,) logits per (task, plane); NaN where an exam's plane is missing or unreadable."""


@dataclass(frozen=True)
class Unit:
    """One trained network: its plane and the tasks (outputs) it answers."""

    plane: str
    tasks: tuple[str, ...]
    layout: str

    @property
    def name(self) -> str:
        return self.plane if self.layout == "per_plane" else f"{self.tasks[0]}-{self.plane}"


def units_for(config: MRNetConfig) -> list[Unit]:
    """The networks a config trains, in a stable order (planes, then tasks)."""
    train, layout = config.train, config.model.layout
    if layout == "per_plane":
        return [Unit(plane, train.tasks, layout) for plane in train.planes]
    return [Unit(plane, (task,), layout) for plane in train.planes for task in train.tasks]


class SeriesClassifier(nn.Module):
    """Packed slices (N, 1, H, W) in 0..255 with per-exam slice counts (B,) -> logits (B, outputs)."""

    def __init__(self, features: Any, outputs: int, dropout: float) -> None:
        super().__init__()
        self.features = features
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features.num_features, outputs)

    def forward(self, slices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.classify(self.encode(slices), lengths)

    def encode(self, slices: torch.Tensor) -> torch.Tensor:
        """Pooled features of every slice (N, F): all of the network's cost, and what ONNX exports."""
        x = (slices.float() - SERIES_MEAN) / SERIES_STD
        return self.features(x.expand(-1, 3, -1, -1))

    def classify(self, per_slice: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Max over each exam's slices, then the head: (N, F) with slice counts (B,) -> logits (B, outputs)."""
        return self.head(self.dropout(segment_max(per_slice, lengths)))


class SliceEncoder(nn.Module):
    """A unit network's `encode` as a module of its own: slices in, per-slice features out (for export)."""

    def __init__(self, model: SeriesClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        return self.model.encode(slices)


class EngineSeriesClassifier(nn.Module):
    """A unit network whose slices go through another engine (ONNX Runtime); pooling and head stay in torch."""

    def __init__(self, encoder: nn.Module, model: SeriesClassifier) -> None:
        super().__init__()
        self.encoder = encoder
        self.model = model

    def forward(self, slices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model.classify(self.encoder(slices).to(lengths.device), lengths)


def build_unit_model(config: MRNetConfig, unit: Unit, initialise: bool = True) -> SeriesClassifier:
    """The network of a unit; `initialise` loads the configured pretrained weights (training only)."""
    features = create_feature_extractor(
        config.model.backbone,
        **config.model.weights(initialise),
    )
    return SeriesClassifier(features, len(unit.tasks), config.model.dropout)


def unit_run(run: RunDir, unit: Unit, fold: int | None = None) -> RunDir:
    """Where a unit's training run lives inside the task's run directory."""
    root = run.root / "units" / unit.name
    return RunDir(root / f"fold{fold}" if fold is not None else root)


def load_units(
    config: MRNetConfig, run: RunDir, fold: int | None = None, engine: str = "torch"
) -> dict[Unit, nn.Module]:
    """Every trained unit network of a run (or of its fusion fold `fold`), safetensors only; with `engine`
    onnx or int8, each unit's slices go through the file `radlab export` wrote beside its weights."""
    models: dict[Unit, nn.Module] = {}
    for unit in units_for(config):
        path = unit_run(run, unit, fold).weights
        model = load_trained(build_unit_model(config, unit, False), path, f"{config.model.backbone} ({unit.name})")
        encoder = engine_model(model, path.parent, engine)
        models[unit] = model if encoder is model else EngineSeriesClassifier(encoder, model)
    return models


# The fusion: per task, one logistic regression per subset of planes (see the module docstring).


def subset_key(planes: Sequence[str]) -> str:
    """The fusion's name of a subset of planes, in plane order: "axial+sagittal"."""
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
    from sklearn.exceptions import ConvergenceWarning  # training only: predict needs no scikit-learn
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

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
            probs[exam, column] = float(np.exp(-np.logaddexp(0.0, -z)))  # the sigmoid, no overflow at z << 0
    return probs, usable


class _Regression(StrictModel):
    planes: list[str] = Field(min_length=1)
    coef: list[FiniteFloat]
    intercept: FiniteFloat

    @model_validator(mode="after")
    def _one_coefficient_a_plane(self) -> _Regression:
        if len(self.coef) != len(self.planes):
            raise ValueError(f"{len(self.coef)} coefficients for {len(self.planes)} planes")
        return self


class FusionFile(StrictModel):
    """What RUN/fusion.json must hold to be applied: finite numbers, a regression for every non-empty subset
    of the run's planes and each task it names, a prevalence in [0, 1] for each of the three labels."""

    source: str
    planes: list[str] = Field(min_length=1)
    tasks: dict[str, dict[str, _Regression]]
    prevalence: dict[str, float]

    @model_validator(mode="after")
    def _complete(self) -> FusionFile:
        subsets = {
            subset_key(s) for k in range(1, len(self.planes) + 1) for s in itertools.combinations(self.planes, k)
        }
        for task, models in self.tasks.items():
            if task not in TASKS or subsets - set(models):
                raise ValueError(f"task {task!r} needs a regression for each of {sorted(subsets)}")
        if set(self.prevalence) != set(TASKS) or not all(0 <= p <= 1 for p in self.prevalence.values()):
            raise ValueError(f"prevalence needs {', '.join(TASKS)}, each in [0, 1]")
        return self
