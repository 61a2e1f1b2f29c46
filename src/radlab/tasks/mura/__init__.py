"""MURA: study-level normal/abnormal from musculoskeletal radiographs (Rajpurkar et al. 2018)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import Field

from radlab.core.commands import AllowOutsideRootOption, DataRootOption, threshold_option
from radlab.core.config import StrictModel
from radlab.core.engine import config as base
from radlab.core.task import PredictOptions, Task


def predict(
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT", help="Headerless image-paths CSV.")],
    output: Path,
    options: PredictOptions,
    data_root: DataRootOption = Path("."),
    threshold: Annotated[float | None, threshold_option("Abnormal if p > threshold (default: the run's).")] = None,
    tta: Annotated[bool | None, typer.Option("--tta/--no-tta", help="Average with the mirrored image.")] = None,
    probs: Annotated[Path | None, typer.Option("--probs", help="Also write study probabilities here.")] = None,
    allow_outside_root: AllowOutsideRootOption = False,
) -> str:
    """Write one `study/,label` row per study (CodaLab format), in first-seen order."""
    from radlab.tasks.mura.predict import describe, predict_csv

    summary = predict_csv(
        input_csv,
        output,
        options.models,
        data_root,
        threshold=threshold,
        tta_hflip=tta,
        probabilities_csv=probs,
        allow_outside_root=allow_outside_root,
        **options.engine_kwargs(),
    )
    return f"{describe(summary)} -> {output}"


def evaluate(
    truth_csv: Annotated[Path, typer.Argument(metavar="TRUTH_CSV", help="*_labeled_studies.csv (or test format).")],
    predictions_csv: Annotated[Path, typer.Argument(metavar="PREDICTIONS_CSV", help="CodaLab predictions.")],
    as_json: Annotated[bool, typer.Option("--json", help="Add sensitivity, specificity, confusion, AUROC.")] = False,
    probs: Annotated[Path | None, typer.Option("--probs", help="Study probabilities, for AUROC.")] = None,
) -> None:
    """The official MURA evaluator: prints its JSON line (kappa and interval per body part, overall)."""
    from radlab.tasks.mura.evaluate import evaluate_files

    official, details = evaluate_files(truth_csv, predictions_csv, probs)
    print(json.dumps({**official, "details": details} if as_json else official))


# The config schema (presets in presets/*.yaml are validated against it).
class ModelConfig(base.BackboneConfig):
    backbone: str = "densenet169"
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)


class DataConfig(base.LoaderDataConfig):
    image_size: int = Field(320, ge=16)
    resize: Literal["stretch", "pad"] = "stretch"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # ImageNet's
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


class AugmentConfig(StrictModel):
    hflip: float = Field(0.5, ge=0.0, le=1.0)
    rotate_deg: float = Field(30.0, ge=0.0, le=180.0)


class TrainConfig(base.EnsembleTrainConfig):
    batch_size: int = Field(8, ge=1)
    # None: train on the train split, validate on the valid split (the paper). k: fold `fold` of a k-fold split
    # of the train split (grouped by patient, stratified on the label) validates; `--folds k` runs them all.
    folds: int | None = Field(None, ge=2)
    fold: int = Field(0, ge=0)
    loss_weighting: Literal["per_type", "global", "none"] = "per_type"
    monitor: Literal["kappa", "auroc", "loss"] = "kappa"


class PredictConfig(base.PredictLoaderConfig):
    pooling: Literal["mean", "max"] = "mean"
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    tta_hflip: bool = False


class MuraConfig(base.TaskConfig[ModelConfig, DataConfig, TrainConfig, PredictConfig]):
    task: Literal["mura"] = "mura"
    augment: AugmentConfig = AugmentConfig()
    optim: base.PlateauOptimConfig = base.PlateauOptimConfig()


TASK = Task.from_manifest(__name__, MuraConfig, predict, evaluate)
