"""The RSNA ICH config schema; presets in presets/*.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from radlab.core.config import StrictModel
from radlab.core.engine.config import EngineConfig
from radlab.core.tune.space import TuneConfig

# The recipe's normalisation of the three windows (on 0..1).
WINDOW_MEAN = (0.22363983, 0.18190407, 0.2523437)
WINDOW_STD = (0.32451536, 0.2956294, 0.31335256)


class ModelConfig(StrictModel):
    backbone: str = "resnext101_32x8d"
    pretrained: bool = True
    weights_file: Path | None = None
    trust_pickle: bool = False


class DataConfig(StrictModel):
    image_size: int = Field(480, ge=32)
    crop: bool = True
    pixel_representation_fix: Literal["auto", "always", "never"] = "auto"
    mean: tuple[float, float, float] = WINDOW_MEAN
    std: tuple[float, float, float] = WINDOW_STD
    num_workers: int = Field(2, ge=0)
    # A folder for the preprocessing cache (windowed, cropped, resized uint8 slices); None decodes every time.
    cache_dir: str | None = None


class AugmentConfig(StrictModel):
    hflip: float = Field(0.5, ge=0.0, le=1.0)
    transpose: float = Field(0.5, ge=0.0, le=1.0)
    shift_scale_rotate: float = Field(0.3, ge=0.0, le=1.0)
    shift: float = Field(0.05, ge=0.0)
    scale: float = Field(0.05, ge=0.0)
    rotate_deg: float = Field(20.0, ge=0.0)


class SliceTrainConfig(EngineConfig):
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-5, gt=0)
    folds: int = Field(5, ge=2)
    fold: int = Field(0, ge=0)


class EmbeddingConfig(StrictModel):
    tta: tuple[Literal["none", "hflip", "transpose"], ...] = ("none", "hflip", "transpose")
    batch_size: int = Field(64, ge=1)


class SequenceConfig(EngineConfig):
    batch_size: int = Field(4, ge=1)
    lr: float = Field(1e-5, gt=0)
    step_gamma: float = Field(0.95, gt=0, le=1)
    keep_epochs: int = Field(12, ge=1, description="the last N epochs are kept and their predictions averaged")


class PredictConfig(StrictModel):
    batch_size: int = Field(32, ge=1)
    num_workers: int = Field(2, ge=0)


class IchConfig(StrictModel):
    task: Literal["ich"] = "ich"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    train: SliceTrainConfig = SliceTrainConfig()
    embeddings: EmbeddingConfig = EmbeddingConfig()
    sequence: SequenceConfig = SequenceConfig()
    predict: PredictConfig = PredictConfig()
    tune: TuneConfig = TuneConfig()

