"""RSNA Pneumonia Detection: lung-opacity boxes on chest X-ray DICOMs (Kaggle 2018).

This module registers the task (`TASK`, the `radlab.tasks` entry point) and holds its own command
functions; they import the task's heavy parts when they run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radlab.core.task import Lazy, Objective, PredictOptions, Task
from radlab.tasks.pneumonia.config import PneumoniaConfig


def predict(
    input_dir: Annotated[Path, typer.Argument(metavar="INPUT", help="Folder of <patientId>.dcm files.")],
    output_csv: Annotated[Path, typer.Argument(metavar="OUTPUT_CSV", help="Kaggle submission to write.")],
    options: PredictOptions,
    threshold: Annotated[float | None, typer.Option(help="Score threshold (default: the run's sweep).")] = None,
    use_global: Annotated[
        bool | None, typer.Option("--use-global/--no-global", help="Weigh scores by the global head.")
    ] = None,
) -> str:
    """`patientId,PredictionString` with `conf x y w h` groups in original pixels, one row per DICOM."""
    from radlab.tasks.pneumonia.predict import describe, predict_folder

    summary = predict_folder(
        input_dir, output_csv, options.models, threshold=threshold, use_global=use_global, **options.engine_kwargs()
    )
    return f"{describe(summary)} -> {output_csv}"


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


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the challenge's files into.")],
    patients: Annotated[int, typer.Option(help="Patients in train + test.", min=4)] = 400,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    size: Annotated[int, typer.Option(help="Image side in pixels (the real images are 1024).", min=64)] = 1024,
) -> None:
    """Synthetic chest X-rays as JPEG-Baseline DICOMs with the two label CSVs and a test folder."""
    from radlab.core.console import info
    from radlab.tasks.pneumonia.synth import synthesize_pneumonia

    counts = synthesize_pneumonia(out, patients=patients, seed=seed, size=size)
    info(f"wrote {out}: train {counts['train']}, test {counts['test']}")


TASK = Task(
    name="pneumonia",
    help="RSNA Pneumonia: lung-opacity boxes on chest X-ray DICOMs (RetinaNet; mAP over IoU 0.40-0.75).",
    data_help="Folder holding stage_2_train_labels.csv.",
    train_help="Train on k-1 folds (stratified on the class), sweep score thresholds on the held-out fold.\n\n"
    "With --folds K: every fold of a K-fold split (train.folds=K), one run each.",
    config=PneumoniaConfig,
    package=__name__,
    objective=Objective("mAP", "maximize", "val/map"),
    training=Lazy("radlab.tasks.pneumonia.recipe:TRAINING"),
    load=Lazy("radlab.tasks.pneumonia.predict:load_run"),
    predict=predict,
    evaluate=evaluate,
    synth=synth,
    report=Lazy("radlab.tasks.pneumonia.views:sections"),
    explain=Lazy("radlab.tasks.pneumonia.views:explain"),
    export=Lazy("radlab.tasks.pneumonia.predict:EXPORT"),
    bench=Lazy("radlab.tasks.pneumonia.bench:BENCH"),
    codalab=None,
    demo=Lazy("radlab.tasks.pneumonia.synth:DEMO"),
    position=2,
)
