"""The MRNet network: a backbone on every slice, global average pooling, max over slices, a linear head.

A *unit* is what one training run produces: one network for one plane, answering one task (the paper's
nine networks) or all three (the per-plane layout, three networks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from radlab.core.config import read_yaml, validate_config
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.infer import engine_model
from radlab.core.models import create_feature_extractor, load_weights
from radlab.core.models.pooling import segment_max
from radlab.tasks.mrnet.config import SERIES_MEAN, SERIES_STD, MRNetConfig


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

    def __init__(self, features: nn.Module, outputs: int, dropout: float) -> None:
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
        pretrained=config.model.pretrained and initialise,
        weights_file=config.model.weights_file if initialise else None,
        trust_pickle=config.model.trust_pickle,
    )
    return SeriesClassifier(features, len(unit.tasks), config.model.dropout)


def unit_run(run: RunDir, unit: Unit, fold: int | None = None) -> RunDir:
    """Where a unit's training run lives inside the task's run directory."""
    root = run.root / "units" / unit.name
    return RunDir(root / f"fold{fold}" if fold is not None else root)


def load_run_config(run_dir: str | Path) -> MRNetConfig:
    run = RunDir(Path(run_dir))
    if not run.config.is_file():
        raise RadlabDataError(run.config, "missing: not a finished radlab run directory (train first)")
    return validate_config(MRNetConfig, read_yaml(run.config, "run config"), source=str(run.config))


def load_units(run_dir: str | Path, engine: str = "torch") -> tuple[MRNetConfig, dict[Unit, nn.Module]]:
    """The config and every trained unit network of a run (safetensors only); with `engine` onnx or int8,
    each unit's slices go through the file `radlab export` wrote beside its weights."""
    run = RunDir(Path(run_dir))
    config = load_run_config(run_dir)
    models = {}
    for unit in units_for(config):
        path = unit_run(run, unit).weights
        model = build_unit_model(config, unit, initialise=False)
        missing, unexpected = model.load_state_dict(load_weights(path), strict=False)
        if missing or unexpected:
            raise RadlabDataError(path, f"weights do not match {config.model.backbone} for unit {unit.name}")
        model = model.eval()
        encoder = engine_model(model, path.parent, engine)
        models[unit] = model if encoder is model else EngineSeriesClassifier(encoder, model)
    return config, models
