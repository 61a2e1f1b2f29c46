"""RSNA Pneumonia Detection: lung-opacity boxes on chest X-ray DICOMs (Kaggle 2018)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import Field, field_validator

from radlab.core.commands import threshold_option
from radlab.core.config import StrictModel, was_boolean
from radlab.core.engine import config as base
from radlab.core.io.dicom_outputs import DicomOutOption, StowOption, check_results_folder
from radlab.core.task import PredictOptions, Task


def predict(
    input_dir: Annotated[Path, typer.Argument(metavar="INPUT", help="Folder of <patientId>.dcm files.")],
    output: Path,
    options: PredictOptions,
    threshold: Annotated[float | None, threshold_option("Score threshold (default: the run's sweep).")] = None,
    use_global: Annotated[
        bool | None, typer.Option("--use-global/--no-global", help="Weigh scores by the global head.")
    ] = None,
    dicom_out: DicomOutOption = None,
    stow: StowOption = None,
) -> str:
    """`patientId,PredictionString` with `conf x y w h` groups in original pixels, one row per DICOM; with
    `--dicom-out` / `--stow` also a DICOM SR per image (its boxes as image regions)."""
    from radlab.tasks.pneumonia.predict import describe, predict_folder

    if dicom_out is not None:
        check_results_folder(dicom_out, [input_dir], options.models)
    summary = predict_folder(
        input_dir, output, options.models, threshold=threshold, use_global=use_global, **options.engine_kwargs()
    )
    line = f"{describe(summary)} -> {output}"
    if dicom_out is None and stow is None:
        return line
    from radlab.core.io.dicomweb import deliver
    from radlab.tasks.pneumonia.dicom_results import submission_results

    return f"{line}; {deliver(submission_results(input_dir, output), dicom_out, stow)}"


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
    # Batch norm: "all" freezes it whole (timm FrozenBatchNorm2d: statistics, scale and shift); "stats" keeps
    # its layers in eval mode (running statistics frozen) while their scale and shift still train, as the
    # recipe's freeze_bn does; "none" trains it as usual. Old run configs said true ("all") or false ("none").
    freeze_bn: Annotated[Literal["all", "stats", "none"], was_boolean("all", "none")] = "all"
    # Box loss: "original" is the recipe's (smooth L1 with beta 1/9, the mean over the positive anchors'
    # 4 coordinates); "torchvision" is RetinaNet's (beta 1, summed over the 4 coordinates / #positives).
    box_loss: Literal["original", "torchvision"] = "torchvision"
    # torchvision's Matcher also gives each box the anchors of its best IoU when that is below 0.5 (the recipe
    # has no such matches).
    low_quality_matches: bool = True
    # Anchor centres at (i + offset) x stride: 0.5 is the recipe's, 0.0 torchvision's.
    anchor_offset: float = Field(0.0, ge=0.0, lt=1.0)


class DataConfig(base.LoaderDataConfig):
    image_size: int = Field(512, ge=64, multiple_of=32)
    mean: float = 0.0
    std: float = 1.0


class AugmentConfig(StrictModel):
    """Training augmentation. `draws: uniform` (radlab's) draws scale, rotation, shear and gamma uniformly
    within +- the range fields, which are 1.25-1.4 sigma of the recipe's normals; `draws: normal` draws them
    as the recipe's level 20 does (detection_dataset.py), from normals with the *_sigma fields as standard
    deviations, and blurs with sigma U(0, blur_sigma). The centre shift is uniform in both. `salt_pepper` is
    the probability of the recipe's coarse salt-and-pepper noise (off unless set)."""

    draws: Literal["uniform", "normal"] = "uniform"
    scale_log2: float = Field(0.2, ge=0.0)
    rotate_deg: float = Field(8.0, ge=0.0)
    shear_deg: float = Field(5.0, ge=0.0)
    shift_fraction: float = Field(0.03, ge=0.0, le=0.5)
    hflip: float = Field(0.5, ge=0.0, le=1.0)
    gamma_log2: float = Field(0.35, ge=0.0)
    noise: float = Field(0.5, ge=0.0, le=1.0)
    noise_std: float = Field(0.04, ge=0.0, le=1.0)  # the largest noise std, as a fraction of 255
    blur: float = Field(0.5, ge=0.0, le=1.0)
    scale_sigma_log2: float = Field(0.15, ge=0.0, le=1.0)
    rotate_sigma_deg: float = Field(6.0, ge=0.0, le=45.0)
    shear_sigma_deg: float = Field(4.0, ge=0.0, le=30.0)
    gamma_sigma_log2: float = Field(0.25, ge=0.0, le=2.0)
    blur_sigma: float = Field(2.0, gt=0.01, le=10.0)
    salt_pepper: float = Field(0.0, ge=0.0, le=1.0)
    salt_pepper_amount: float = Field(0.01, gt=0.0, le=1.0)  # the fraction of the coarse grid's cells replaced
    # The coarse grid's side as a fraction of the image's, drawn per axis from this range.
    salt_pepper_size: tuple[float, float] = (0.1, 0.2)

    @field_validator("salt_pepper_size")
    @classmethod
    def _size_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < value[0] <= value[1] <= 1.0:
            raise ValueError(f"salt_pepper_size must be a range within (0, 1], got {value}")
        return value


class OptimConfig(base.PlateauOptimConfig):
    lr: float = Field(1e-5, gt=0)
    plateau_factor: float = Field(0.2, gt=0, lt=1)
    plateau_patience: int = Field(4, ge=0)


class TrainConfig(base.EnsembleTrainConfig):
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
