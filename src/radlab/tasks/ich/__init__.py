"""RSNA Intracranial Hemorrhage Detection: six labels per head CT slice (Kaggle 2019)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import Field

from radlab.core.config import StrictModel
from radlab.core.engine import config as base
from radlab.core.io.dicom_outputs import DicomOutOption, StowOption, check_results_folder
from radlab.core.task import PredictOptions, Task


def predict(
    input_dir: Annotated[Path, typer.Argument(metavar="INPUT", help="Folder of ID_*.dcm slices.")],
    output: Path,
    options: PredictOptions,
    dicom_out: DicomOutOption = None,
    stow: StowOption = None,
) -> str:
    """`ID,Label` with 6 rows per readable image, probabilities clipped to [1e-5, 1 - 1e-5]; with
    `--dicom-out` / `--stow` also a DICOM SR per study (each slice's six probabilities)."""
    from radlab.tasks.ich.predict import describe, predict_folder

    if dicom_out is not None:
        check_results_folder(dicom_out, [input_dir], options.models)
    summary = predict_folder(input_dir, output, options.models, **options.engine_kwargs())
    line = f"{describe(summary)} -> {output}"
    if dicom_out is None and stow is None:
        return line
    from radlab.core.io.dicomweb import deliver
    from radlab.tasks.ich.dicom_results import submission_results

    return f"{line}; {deliver(submission_results(input_dir, output), dicom_out, stow)}"


def evaluate(
    truth: Annotated[Path, typer.Argument(metavar="TRUTH_CSV", help="stage_2_train.csv-format labels.")],
    submission: Annotated[Path, typer.Argument(metavar="PREDICTIONS_CSV", help="An ID,Label submission.")],
    as_json: Annotated[bool, typer.Option("--json", help="Pretty-print (the output is JSON either way).")] = False,
) -> None:
    """`weighted_log_loss` (any 2, others 1) and `<subtype>_log_loss` per subtype, as JSON."""
    from radlab.tasks.ich.evaluate import evaluate_files

    print(json.dumps(evaluate_files(truth, submission), indent=2 if as_json else None))


# The config schema (presets in presets/*.yaml are validated against it).
class ModelConfig(base.BackboneConfig):
    # A timm name with its pretrained tag: the recipe's Instagram-pretrained (WSL, IG-1B) ResNeXt-101 32x8d
    # fine-tuned on ImageNet, the weights of torch.hub's resnext101_32x8d_wsl (licence CC-BY-NC 4.0).
    backbone: str = "resnext101_32x8d.fb_wsl_ig1b_ft_in1k"


SliceOrder = Literal["position", "z"]
"""How the slices of a series are ordered: "position" sorts ImagePositionPatient lexicographically (x, then
y, then z), as the recipe does (trainlstm.py); "z" by z alone. Ties, and slices without a position (last), go
by image id."""


class DataConfig(base.LoaderDataConfig):
    image_size: int = Field(480, ge=32)
    # True: the black border cropped to a top-left square (the recipe's pipeline v01); False: the whole slice
    # resized (its pipeline v02, the other half of its final ensemble).
    crop: bool = True
    # radlab's fix of the stored-value quirk; the recipe applies none ("never").
    pixel_representation_fix: Literal["auto", "always", "never"] = "auto"
    # The defaults of the keys added after runs were first written are what those runs did (their
    # config.yaml lacks them); the paper preset sets the recipe's values.
    slice_order: SliceOrder = "z"
    # The recipe's normalisation of the three windows (on 0..1).
    mean: tuple[float, float, float] = (0.22363983, 0.18190407, 0.2523437)
    std: tuple[float, float, float] = (0.32451536, 0.2956294, 0.31335256)


class AugmentConfig(StrictModel):
    hflip: float = Field(0.5, ge=0.0, le=1.0)
    transpose: float = Field(0.5, ge=0.0, le=1.0)
    shift_scale_rotate: float = Field(0.3, ge=0.0, le=1.0)
    shift: float = Field(0.05, ge=0.0)
    scale: float = Field(0.05, ge=0.0)
    rotate_deg: float = Field(20.0, ge=0.0)


class SliceTrainConfig(base.EnsembleTrainConfig):
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-5, gt=0)
    folds: int = Field(5, ge=2)
    fold: int = Field(0, ge=0)
    # "original": a patient's fold is the position of its first row in the image-sorted label table, mod
    # `folds` (prepare_folds.py; the recipe trained folds 0, 1 and 2 of 5); "stratified": radlab's
    # StratifiedGroupKFold by patient on "any", seeded.
    fold_rule: Literal["original", "stratified"] = "stratified"
    # Validation probabilities are clipped to [clip, 1 - clip] before the log loss, as the recipe scores
    # its validation (trainlstm.py); None clips at float64 eps only (scikit-learn's log_loss).
    validation_clip: float | None = Field(None, gt=0, lt=0.5)


class EmbeddingConfig(StrictModel):
    tta: tuple[Literal["none", "hflip", "transpose"], ...] = ("none", "hflip", "transpose")
    batch_size: int = Field(64, ge=1)


class SequenceConfig(base.EngineConfig):
    batch_size: int = Field(4, ge=1)
    # True: padded series are packed, so the pads never reach an LSTM state (radlab's); False: the recipe's
    # way, series pre-padded with zeros and the LSTMs run over the pads, only the loss and outputs masked.
    packing: bool = True
    lr: float = Field(1e-5, gt=0)
    step_gamma: float = Field(0.95, gt=0, le=1)
    keep_epochs: int = Field(12, ge=1, description="the last N epochs are kept and their predictions averaged")


class IchConfig(base.TaskConfig[ModelConfig, DataConfig, SliceTrainConfig, base.PredictLoaderConfig]):
    task: Literal["ich"] = "ich"
    augment: AugmentConfig = AugmentConfig()
    embeddings: EmbeddingConfig = EmbeddingConfig()
    sequence: SequenceConfig = SequenceConfig()


TASK = Task.from_manifest(__name__, IchConfig, predict, evaluate)
