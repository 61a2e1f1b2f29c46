"""RSNA Pneumonia Detection: lung-opacity boxes on chest X-ray DICOMs (Kaggle 2018)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import Field

from radlab.core.commands import threshold_option
from radlab.core.config import StrictModel
from radlab.core.engine import config as base
from radlab.core.task import PredictOptions, Task


def predict(
    input_dir: Annotated[Path, typer.Argument(metavar="INPUT", help="Folder of <patientId>.dcm files.")],
    output: Path,
    options: PredictOptions,
    threshold: Annotated[float | None, threshold_option("Score threshold (default: the run's sweep).")] = None,
    use_global: Annotated[
        bool | None, typer.Option("--use-global/--no-global", help="Weigh scores by the global head.")
    ] = None,
) -> str:
    """`patientId,PredictionString` with `conf x y w h` groups in original pixels, one row per DICOM."""
    from radlab.tasks.pneumonia.predict import describe, predict_folder

    summary = predict_folder(
        input_dir, output, options.models, threshold=threshold, use_global=use_global, **options.engine_kwargs()
    )
    return f"{describe(summary)} -> {output}"


def evaluate(
    truth: Annotated[Path, typer.Argument(metavar="TRUTH_CSV", help="stage_2_train_labels.csv-format boxes.")],
    submission: Annotated[Path, typer.Argument(metavar="PREDICTIONS_CSV", help="A Kaggle submission.")],
    strictly_greater: Annotated[
        bool, typer.Option("--gt", help="A hit needs IoU > t (Kaggle's text) not >= t.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Pretty-print (the output is JSON either way).")] = False,
) -> None:
    """mAP over IoU thresholds 0.40..0.75 and the precision at each, as JSON."""
    from radlab.tasks.pneumonia.evaluate import evaluate_files

    scores = evaluate_files(truth, submission, ">" if strictly_greater else ">=")
    print(json.dumps(scores, indent=2 if as_json else None))


# The config schema (presets in presets/*.yaml are validated against it).
class ModelConfig(base.BackboneConfig):
    backbone: str = "seresnext101_32x4d"
    levels: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
    fpn_channels: int = Field(256, ge=8)
    head_dropout: float = Field(0.5, ge=0.0, lt=1.0)
    global_dropout: float = Field(0.5, ge=0.0, lt=1.0)
    global_loss_weight: float = Field(0.1, ge=0.0)
    freeze_bn: bool = True


class DataConfig(base.LoaderDataConfig):
    image_size: int = Field(512, ge=64, multiple_of=32)
    mean: float = 0.0
    std: float = 1.0


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


class OptimConfig(base.PlateauOptimConfig):
    lr: float = Field(1e-5, gt=0)
    plateau_factor: float = Field(0.2, gt=0, lt=1)
    plateau_patience: int = Field(4, ge=0)


class TrainConfig(base.EngineConfig):
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


class PneumoniaConfig(base.TaskConfig[ModelConfig, DataConfig, TrainConfig, base.PredictLoaderConfig]):
    task: Literal["pneumonia"] = "pneumonia"
    augment: AugmentConfig = AugmentConfig()
    optim: OptimConfig = OptimConfig()
    postprocess: PostprocessConfig = PostprocessConfig()


TASK = Task.from_manifest(__name__, PneumoniaConfig, predict, evaluate)
