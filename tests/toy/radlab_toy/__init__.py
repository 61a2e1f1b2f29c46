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
from radlab.core.engine.config import BackboneConfig, EngineConfig, PredictLoaderConfig
from radlab.core.task import Codalab, Lazy, Objective, PredictOptions, Task
from radlab.core.tune.space import TuneConfig


class DataConfig(StrictModel):
    image_size: int = Field(32, ge=16)
    num_workers: int = Field(0, ge=0)


class OptimConfig(StrictModel):
    lr: float = Field(3e-3, gt=0)


class TrainConfig(EngineConfig):
    batch_size: int = Field(16, ge=1)
    folds: int | None = Field(None, ge=2)
    fold: int = Field(0, ge=0)


class ToyConfig(StrictModel):
    task: str = "toy"
    model: BackboneConfig = BackboneConfig()
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    predict: PredictLoaderConfig = PredictLoaderConfig()
    tune: TuneConfig = TuneConfig()


def predict(
    input_dir: Annotated[Path, typer.Argument(metavar="INPUT", help="A folder of PNG images.")],
    output_csv: Annotated[Path, typer.Argument(metavar="OUTPUT_CSV", help="image,probability rows to write.")],
    options: PredictOptions,
) -> str:
    """One `image,probability` row per readable PNG, sorted by name."""
    from radlab_toy.toy import predict_folder

    written = predict_folder(input_dir, output_csv, options.models, **options.engine_kwargs())
    return f"{written} images -> {output_csv}"


def evaluate(
    truth_csv: Annotated[Path, typer.Argument(metavar="TRUTH_CSV", help="labels.csv (image,label,split).")],
    predictions_csv: Annotated[Path, typer.Argument(metavar="PREDICTIONS_CSV", help="image,probability rows.")],
) -> None:
    """AUROC and accuracy at 0.5, as JSON."""
    from radlab_toy.toy import evaluate_files

    print(json.dumps(evaluate_files(truth_csv, predictions_csv)))


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write images/ and labels.csv into.")],
    images: Annotated[int, typer.Option(min=8, help="Images in train + valid.")] = 48,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
) -> None:
    """Noisy grey images, half of them with a bright disc (the label)."""
    from radlab_toy.toy import synthesize

    synthesize(out, images=images, seed=seed)


TASK = Task(
    name="toy",
    help="Toy: a bright disc or not, on generated images (a challenge defined outside radlab).",
    data_help="Folder holding images/ and labels.csv.",
    train_help="Train on the train images, validate on the valid ones; keeps the best validation AUROC.",
    config=ToyConfig,
    package=__name__,
    objective=Objective("auroc", "maximize", "val/auroc"),
    training=Lazy("radlab_toy.toy:TRAINING"),
    load=Lazy("radlab_toy.toy:load_run"),
    predict=predict,
    evaluate=evaluate,
    synth=synth,
    report=Lazy("radlab_toy.toy:sections"),
    explain=Lazy("radlab_toy.toy:explain"),
    export=Lazy("radlab_toy.toy:EXPORT"),
    bench=Lazy("radlab_toy.toy:BENCH"),
    codalab=Codalab(("config.yaml", "model.safetensors"), "IMAGES_DIR PREDICTIONS_CSV", Lazy("radlab_toy.toy:bundled")),
    demo=Lazy("radlab_toy.toy:DEMO"),
)
