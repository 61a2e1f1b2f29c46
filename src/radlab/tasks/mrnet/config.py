"""The MRNet config schema (presets in presets/*.yaml, validated against it) and the planes and labels."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from radlab.core.config import StrictModel
from radlab.core.engine.config import EngineConfig
from radlab.core.tune.space import TuneConfig

# Here rather than in formats.py, which imports numpy: the command line imports this module.
PLANES = ("axial", "coronal", "sagittal")
TASKS = ("abnormal", "acl", "meniscus")

# Per-series standardisation of the MRNet baseline code: min-max to 0..255, then (x - 58.09) / 49.73.
SERIES_MEAN, SERIES_STD = 58.09, 49.73


class ModelConfig(StrictModel):
    backbone: str = "alexnet"
    pretrained: bool = True
    weights_file: Path | None = None
    trust_pickle: bool = False
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    layout: Literal["per_task", "per_plane"] = "per_task"


class DataConfig(StrictModel):
    image_size: int = Field(256, ge=16)
    num_workers: int = Field(2, ge=0)


class AugmentConfig(StrictModel):
    rotate_deg: float = Field(25.0, ge=0.0, le=180.0)
    shift_px: float = Field(25.0, ge=0.0)
    hflip: float = Field(0.5, ge=0.0, le=1.0)


class OptimConfig(StrictModel):
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    plateau_factor: float = Field(0.3, gt=0, lt=1)
    plateau_patience: int = Field(1, ge=0)


class TrainConfig(EngineConfig):
    batch_size: int = Field(4, ge=1, description="exams per step; their slices are packed into one pass")
    planes: tuple[str, ...] = PLANES
    tasks: tuple[str, ...] = TASKS
    class_weighting: bool = True
    # None: train on the train split, validate on the valid split (the paper). k: fold `fold` of a k-fold split
    # of the train split (stratified on abnormal) validates; `--folds k` runs them all.
    folds: int | None = Field(None, ge=2)
    fold: int = Field(0, ge=0)

    @field_validator("planes")
    @classmethod
    def _known_planes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - set(PLANES)
        if unknown or not value:
            raise ValueError(f"planes must be a non-empty subset of {PLANES}, got {value}")
        return tuple(p for p in PLANES if p in value)

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - set(TASKS)
        if unknown or not value:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {value}")
        return tuple(t for t in TASKS if t in value)


class FusionConfig(StrictModel):
    source: Literal["train", "oof"] = "train"
    folds: int = Field(5, ge=2)


class PredictConfig(StrictModel):
    batch_size: int = Field(4, ge=1)
    num_workers: int = Field(2, ge=0)
    tta_hflip: bool = False


class MRNetConfig(StrictModel):
    task: Literal["mrnet"] = "mrnet"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    fusion: FusionConfig = FusionConfig()
    predict: PredictConfig = PredictConfig()
    tune: TuneConfig = TuneConfig()

