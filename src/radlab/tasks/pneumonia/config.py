"""The RSNA Pneumonia config schema; presets in presets/*.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from radlab.core.config import StrictModel
from radlab.core.engine.config import EngineConfig
from radlab.core.tune.space import TuneConfig


class ModelConfig(StrictModel):
    backbone: str = "seresnext101_32x4d"
    pretrained: bool = True
    weights_file: Path | None = None
    trust_pickle: bool = False
    levels: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
    fpn_channels: int = Field(256, ge=8)
    head_dropout: float = Field(0.5, ge=0.0, lt=1.0)
    global_dropout: float = Field(0.5, ge=0.0, lt=1.0)
    global_loss_weight: float = Field(0.1, ge=0.0)
    freeze_bn: bool = True


class DataConfig(StrictModel):
    image_size: int = Field(512, ge=64, multiple_of=32)
    mean: float = 0.0
    std: float = 1.0
    num_workers: int = Field(2, ge=0)
    # A folder for the preprocessing cache (decoded, resized uint8 images, memory-mapped); None decodes every time.
    cache_dir: str | None = None


class AugmentConfig(StrictModel):
    """Ranges of uniform draws (the recipe draws from normals with these as about 1.5 sigma)."""

    scale_log2: float = Field(0.2, ge=0.0)
    rotate_deg: float = Field(8.0, ge=0.0)
    shear_deg: float = Field(5.0, ge=0.0)
    shift_fraction: float = Field(0.03, ge=0.0)
    hflip: float = Field(0.5, ge=0.0, le=1.0)
    gamma_log2: float = Field(0.35, ge=0.0)
    noise: float = Field(0.5, ge=0.0, le=1.0)
    blur: float = Field(0.5, ge=0.0, le=1.0)


class OptimConfig(StrictModel):
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    plateau_factor: float = Field(0.2, gt=0, lt=1)
    plateau_patience: int = Field(4, ge=0)


class TrainConfig(EngineConfig):
    batch_size: int = Field(6, ge=1)
    folds: int = Field(4, ge=2)
    fold: int = Field(0, ge=0)
    fold_seed: int = 42


class PostprocessConfig(StrictModel):
    score_floor: float = Field(0.025, ge=0.0, le=1.0)
    nms_iou: float = Field(0.05, gt=0.0, le=1.0)
    max_detections: int = Field(100, ge=1)
    relative_prune: float = Field(0.5, ge=0.0, le=1.0)
    thresholds: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8)
    use_global: bool = False
    iou_comparison: Literal[">=", ">"] = ">="


class PredictConfig(StrictModel):
    batch_size: int = Field(4, ge=1)
    num_workers: int = Field(2, ge=0)


class PneumoniaConfig(StrictModel):
    task: Literal["pneumonia"] = "pneumonia"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    postprocess: PostprocessConfig = PostprocessConfig()
    predict: PredictConfig = PredictConfig()
    tune: TuneConfig = TuneConfig()

