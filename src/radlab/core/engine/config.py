"""Engine settings every task's `train` section inherits: epochs, precision, devices, seed, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import Field, model_validator

from radlab.core.config import StrictModel
from radlab.core.tune.space import TuneConfig

Precision = Literal["auto", "32-true", "16-mixed", "bf16-mixed", "64-true"]


class EngineConfig(StrictModel):
    """Options passed to Lightning's Trainer (see `build_trainer`)."""

    max_epochs: int = Field(30, ge=1)
    precision: Precision = "auto"
    # The network's 4-D weights in channels_last memory (NHWC), so convolutions run in the layout tensor cores
    # and oneDNN prefer; radlab's option, off as the recipes trained (`radlab bench train` measures it).
    channels_last: bool = False
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


class EnsembleTrainConfig(EngineConfig):
    """The `train` keys of the tasks whose runs can be ensembles (see `core/engine/ensemble.py`).

    `members: N` trains N runs (seeds seed, seed+1, ...) into OUT/member<k>/ and keeps the best
    `keep_members` of them (all when None; ignored without `members`) on the held-out score
    `keep_members_on` (the objective's when None; a score whose name ends in "loss" is better lower);
    `snapshots: K` keeps the K best epochs of one run on the recipe's monitor, or `snapshot_epochs` exactly
    those epochs (1-based), as RUN/kept/epoch<e>/. `predict --model` averages an ensemble's members as it
    averages folds."""

    members: int | None = Field(None, ge=2)
    keep_members: int | None = Field(None, ge=1)
    keep_members_on: str | None = None
    snapshots: int | None = Field(None, ge=1)
    snapshot_epochs: tuple[int, ...] | None = None

    @model_validator(mode="after")
    def _one_plan(self) -> EnsembleTrainConfig:
        if self.snapshots is not None and self.snapshot_epochs is not None:
            raise ValueError("set train.snapshots (the best K epochs) or train.snapshot_epochs, not both")
        if self.snapshot_epochs is not None and (not self.snapshot_epochs or min(self.snapshot_epochs) < 1):
            raise ValueError("train.snapshot_epochs lists 1-based epochs, at least one")
        if self.snapshot_epochs is not None and max(self.snapshot_epochs) > self.max_epochs:
            raise ValueError(f"train.snapshot_epochs goes past train.max_epochs ({self.max_epochs})")
        if self.keep_members is not None and self.members is not None and self.keep_members > self.members:
            raise ValueError(f"train.keep_members keeps at most the {self.members} train.members")
        return self


class BackboneConfig(StrictModel):
    """The `model` keys every task shares: a timm backbone, its pretrained weights from the hub or from a
    local file (safetensors; a pickle only with `trust_pickle`). Tasks subclass it with their defaults."""

    backbone: str = "test_resnet"
    pretrained: bool = True
    weights_file: Path | None = None
    trust_pickle: bool = False

    def weights(self, initialise: bool = True) -> dict[str, Any]:
        """The weight keywords of `create_backbone`: the configured pretrained weights when `initialise`
        (training starts from them), none otherwise (a trained run loads its own)."""
        return {
            "pretrained": self.pretrained and initialise,
            "weights_file": self.weights_file if initialise else None,
            "trust_pickle": self.trust_pickle,
        }


class TrackingConfig(StrictModel):
    """The `tracking` keys (`train --logger`): experiment tracking through Lightning's loggers (see
    `core/engine/tracking.py`). `none` keeps the run directory's own files only; `csv` and `tensorboard`
    write RUN/logs/; `mlflow` logs into `experiment` at `mlflow_uri` (a server, `sqlite:///FILE`, a file
    store; None: $MLFLOW_TRACKING_URI, else ./mlflow.db), the run named `run_name` (None: the run
    directory's name)."""

    logger: Literal["none", "csv", "tensorboard", "mlflow"] = "none"
    mlflow_uri: str | None = None
    experiment: str = "radlab"
    run_name: str | None = None


class PredictLoaderConfig(StrictModel):
    """The `predict` keys every task shares: items per forward pass and loading processes."""

    batch_size: int = Field(8, ge=1)
    num_workers: int = Field(2, ge=0)


class PlateauOptimConfig(StrictModel):
    """The `optim` keys of the recipes that train with Adam and cut the rate when the validation loss stops
    falling (ReduceLROnPlateau): MURA, MRNet, RSNA Pneumonia. Tasks subclass it with their defaults."""

    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    plateau_factor: float = Field(0.1, gt=0, lt=1)
    plateau_patience: int = Field(1, ge=0)


class LoaderDataConfig(StrictModel):
    """The `data` keys of the tasks that decode files while training: loader processes, and a folder for
    the preprocessing cache (decoded, resized uint8 images, memory-mapped; None decodes every time)."""

    num_workers: int = Field(2, ge=0)
    cache_dir: str | None = None


ModelT = TypeVar("ModelT", bound=BackboneConfig)
DataT = TypeVar("DataT", bound=StrictModel)
TrainT = TypeVar("TrainT", bound=EngineConfig)
PredictT = TypeVar("PredictT", bound=PredictLoaderConfig)

SECTIONS = ("model", "data", "train", "predict")


class TaskConfig(StrictModel, Generic[ModelT, DataT, TrainT, PredictT]):
    """What every task's config holds: its name, `model` (the backbone), `data`, `train` (the engine and the
    recipe), `predict`, `tune` and `tracking`, typed by the task's own sections; a task adds its other
    sections. A section a preset or file leaves out takes its defaults."""

    task: str
    model: ModelT
    data: DataT
    train: TrainT
    predict: PredictT
    tune: TuneConfig = TuneConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_sections(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {**{name: {} for name in SECTIONS}, **values}
        return values
