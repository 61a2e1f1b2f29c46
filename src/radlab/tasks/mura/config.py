"""The MURA config schema; presets live in presets/*.yaml and are validated against it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from radlab.core.config import StrictModel
from radlab.core.engine.config import EngineConfig
from radlab.core.tune.space import TuneConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelConfig(StrictModel):
    backbone: str = "densenet169"
    pretrained: bool = True
    weights_file: Path | None = None
    trust_pickle: bool = False
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)


class DataConfig(StrictModel):
    image_size: int = Field(320, ge=16)
    resize: Literal["stretch", "pad"] = "stretch"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    num_workers: int = Field(2, ge=0)
    # A folder for the preprocessing cache (decoded, resized uint8 images, memory-mapped); None decodes every time.
    cache_dir: str | None = None


class AugmentConfig(StrictModel):
    hflip: float = Field(0.5, ge=0.0, le=1.0)
    rotate_deg: float = Field(30.0, ge=0.0, le=180.0)


class OptimConfig(StrictModel):
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    plateau_factor: float = Field(0.1, gt=0, lt=1)
    plateau_patience: int = Field(1, ge=0)


class TrainConfig(EngineConfig):
    batch_size: int = Field(8, ge=1)
    # None: train on the train split, validate on the valid split (the paper). k: fold `fold` of a k-fold split
    # of the train split (grouped by patient, stratified on the label) validates; `--folds k` runs them all.
    folds: int | None = Field(None, ge=2)
    fold: int = Field(0, ge=0)
    loss_weighting: Literal["per_type", "global", "none"] = "per_type"
    monitor: Literal["kappa", "auroc", "loss"] = "kappa"


class PredictConfig(StrictModel):
    batch_size: int = Field(8, ge=1)
    num_workers: int = Field(2, ge=0)
    pooling: Literal["mean", "max"] = "mean"
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    tta_hflip: bool = False


class MuraConfig(StrictModel):
    task: Literal["mura"] = "mura"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    predict: PredictConfig = PredictConfig()
    tune: TuneConfig = TuneConfig()
