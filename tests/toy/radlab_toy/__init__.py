"""A fifth challenge from outside radlab, for the contract tests: bright discs on noisy grey images.

Its data is `DATA/images/*.png` with `DATA/labels.csv` (`image,label,split`: split `train` or `valid`);
`predict` reads a folder of PNGs and writes `image,probability` rows. It is registered by the entry point in
tests/toy/radlab_toy-0.1.dist-info (no line of radlab names it) and built only from radlab's core parts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import Field

from radlab.core.config import StrictModel
from radlab.core.engine.config import BackboneConfig, EnsembleTrainConfig, PredictLoaderConfig, TaskConfig
from radlab.core.task import PredictOptions, Task


class DataConfig(StrictModel):
    image_size: int = Field(32, ge=16)
    num_workers: int = Field(0, ge=0)


class OptimConfig(StrictModel):
    lr: float = Field(3e-3, gt=0)


class TrainConfig(EnsembleTrainConfig):
    batch_size: int = Field(16, ge=1)
    folds: int | None = Field(None, ge=2)
    fold: int = Field(0, ge=0)


class ToyConfig(TaskConfig[BackboneConfig, DataConfig, TrainConfig, PredictLoaderConfig]):
    task: str = "toy"
    optim: OptimConfig = OptimConfig()


def predict(
    input_dir: Annotated[Path, typer.Argument(metavar="INPUT", help="A folder of PNG images.")],
    output: Path,
    options: PredictOptions,
) -> str:
    """One `image,probability` row per readable PNG, sorted by name."""
    from radlab_toy.toy import predict_folder

    written = predict_folder(input_dir, output, options.models, **options.engine_kwargs())
    return f"{written} images -> {output}"


def evaluate(
    truth_csv: Annotated[Path, typer.Argument(metavar="TRUTH_CSV", help="labels.csv (image,label,split).")],
    predictions_csv: Annotated[Path, typer.Argument(metavar="PREDICTIONS_CSV", help="image,probability rows.")],
) -> None:
    """AUROC and accuracy at 0.5, as JSON."""
    from radlab_toy.toy import evaluate_files

    print(json.dumps(evaluate_files(truth_csv, predictions_csv)))


TASK = Task.from_manifest(__name__, ToyConfig, predict, evaluate)
