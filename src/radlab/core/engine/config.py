"""Engine settings every task's `train` section inherits: epochs, precision, devices, seed, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from radlab.core.config import StrictModel

Precision = Literal["auto", "32-true", "16-mixed", "bf16-mixed", "64-true"]


class EngineConfig(StrictModel):
    """Options passed to Lightning's Trainer (see `build_trainer`)."""

    max_epochs: int = Field(30, ge=1)
    precision: Precision = "auto"
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = Field(1, ge=1)
    # Batch norm statistics over every process's batch (GPU DDP with small per-device batches); CUDA only.
    sync_batchnorm: bool = False
    gradient_clip_val: float | None = None
    early_stopping_patience: int | None = Field(10, ge=1)
    limit_train_batches: int | float = 1.0
    limit_val_batches: int | float = 1.0
    seed: int = 0
    deterministic: bool = False
    progress: Literal["auto", "bar", "lines", "quiet"] = "auto"


class BackboneConfig(StrictModel):
    """The `model` keys every task shares: a timm backbone, its pretrained weights from the hub or from a
    local file (safetensors; a pickle only with `trust_pickle`). Tasks subclass it with their defaults."""

    backbone: str = "test_resnet"
    pretrained: bool = True
    weights_file: Path | None = None
    trust_pickle: bool = False


class PredictLoaderConfig(StrictModel):
    """The `predict` keys every task shares: items per forward pass and loading processes."""

    batch_size: int = Field(8, ge=1)
    num_workers: int = Field(2, ge=0)
