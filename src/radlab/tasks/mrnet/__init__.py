"""MRNet: knee MRI, three planes x three labels (abnormal, ACL tear, meniscal tear) (Bien et al. 2018)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import Field, field_validator

from radlab.core.commands import AllowOutsideRootOption, DataRootOption
from radlab.core.config import StrictModel, was_boolean
from radlab.core.engine import config as base
from radlab.core.task import PredictOptions, Task

# Here rather than in formats.py, which imports numpy: the command line imports this module.
PLANES = ("axial", "coronal", "sagittal")
TASKS = ("abnormal", "acl", "meniscus")

# Per-series standardisation of the MRNet baseline code: min-max to 0..255, then (x - 58.09) / 49.73.
SERIES_MEAN, SERIES_STD = 58.09, 49.73


def predict(
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT", help="Headerless CSV, three .npy paths per exam.")],
    output: Path,
    options: PredictOptions,
    data_root: DataRootOption = Path("."),
    tta: Annotated[bool | None, typer.Option("--tta/--no-tta", help="Average with the mirrored series.")] = None,
    allow_outside_root: AllowOutsideRootOption = False,
) -> str:
    """One `p_abnormal,p_acl,p_meniscus` row per exam, in input order, no header."""
    from radlab.tasks.mrnet.predict import describe, predict_csv

    summary = predict_csv(
        input_csv,
        output,
        options.models,
        data_root,
        tta_hflip=tta,
        allow_outside_root=allow_outside_root,
        **options.engine_kwargs(),
    )
    return f"{describe(summary)} -> {output}"


def evaluate(
    truth: Annotated[
        Path, typer.Argument(metavar="TRUTH_CSV", help="abnormal,acl,meniscus rows; or with --data-root a split name.")
    ],
    predictions_csv: Annotated[Path, typer.Argument(metavar="PREDICTIONS_CSV", help="The submission.")],
    data_root: Annotated[Path | None, typer.Option("--data-root", help="Use the official label CSVs here.")] = None,
    paths: Annotated[Path | None, typer.Option("--paths", help="The input paths CSV, for the exam order.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Add per-label sensitivity and specificity at 0.5.")] = False,
) -> None:
    """AUROC per label and their mean, as JSON (`Abnormal_AUROC`, `ACL_AUROC`, `Meniscus_AUROC`, `Average_AUROC`)."""
    from radlab.tasks.mrnet.formats import evaluate_files

    scores, details = evaluate_files(truth, predictions_csv, data_root, paths)
    print(json.dumps({**scores, "details": details} if as_json else scores))


# The config schema (presets in presets/*.yaml are validated against it).
class ModelConfig(base.BackboneConfig):
    backbone: str = "alexnet"
    # Before the head; the Stanford baseline's MRNet has none (0.0), Misa Ogura's re-implementation 0.5.
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    layout: Literal["per_task", "per_plane"] = "per_task"


class DataConfig(StrictModel):
    image_size: int = Field(256, ge=16)
    num_workers: int = Field(2, ge=0)


class AugmentConfig(StrictModel):
    rotate_deg: float = Field(25.0, ge=0.0, le=180.0)
    shift_px: float = Field(25.0, ge=0.0)
    hflip: float = Field(0.5, ge=0.0, le=1.0)


class OptimConfig(base.PlateauOptimConfig):
    # The Stanford baseline's ReduceLROnPlateau(patience=5, factor=.3, threshold=1e-4): torch's default
    # threshold (1e-4, relative), so only the factor and the patience are keys.
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    plateau_factor: float = Field(0.3, gt=0, lt=1)
    plateau_patience: int = Field(5, ge=0)


ClassWeighting = Literal["baseline", "pos_weight", "none"]
"""How the BCE weighs a label 0 and a label 1 of a task, with p the share of positives: "baseline" (the Stanford
baseline code's per-sample weights p and 1 - p, p taken from the labels the loss is computed on, so the
validation loss uses the validation set's p), "pos_weight" (Misa Ogura's: 1 and negatives / positives of the
training labels, for training and validation alike) or "none"."""


class TrainConfig(base.EnsembleTrainConfig):
    """MRNet's ensembles are of seeds (`members`); each of its networks keeps one epoch, its best."""

    batch_size: int = Field(1, ge=1, description="exams per step; their slices are packed into one pass")
    planes: tuple[str, ...] = PLANES
    tasks: tuple[str, ...] = TASKS
    class_weighting: Annotated[ClassWeighting, was_boolean("pos_weight", "none")] = "baseline"
    max_epochs: int = Field(50, ge=1)
    early_stopping_patience: int | None = Field(None, ge=1)
    # None: train on the train split, validate on the valid split (the paper). k: fold `fold` of a k-fold split
    # of the train split (stratified on abnormal) validates; `--folds k` runs them all.
    folds: int | None = Field(None, ge=2)
    fold: int = Field(0, ge=0)

    @field_validator("snapshots", "snapshot_epochs")
    @classmethod
    def _no_kept_epochs(cls, value: object) -> object:
        if value is not None:
            raise ValueError(
                "MRNet keeps one epoch per network (kept epochs would need a fusion each); use train.members"
            )
        return value

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


class PredictConfig(base.PredictLoaderConfig):
    batch_size: int = Field(4, ge=1)
    tta_hflip: bool = False


class MRNetConfig(base.TaskConfig[ModelConfig, DataConfig, TrainConfig, PredictConfig]):
    task: Literal["mrnet"] = "mrnet"
    augment: AugmentConfig = AugmentConfig()
    optim: OptimConfig = OptimConfig()
    fusion: FusionConfig = FusionConfig()


TASK = Task.from_manifest(__name__, MRNetConfig, predict, evaluate)
