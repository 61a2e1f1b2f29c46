"""MRNet: knee MRI, three planes x three labels (abnormal, ACL tear, meniscal tear) (Bien et al. 2018).

This module registers the task (`TASK`, the `radlab.tasks` entry point) and holds its own command
functions; they import the task's heavy parts when they run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radlab.core.task import Codalab, Lazy, Objective, PredictOptions, Task, TrainOption
from radlab.tasks.mrnet.config import MRNetConfig


def predict(
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT", help="Headerless CSV, three .npy paths per exam.")],
    output_csv: Annotated[Path, typer.Argument(metavar="OUTPUT_CSV", help="Submission to write.")],
    options: PredictOptions,
    data_root: Annotated[Path, typer.Option("--data-root", help="Folder the CSV paths are relative to.")] = Path("."),
    tta: Annotated[bool | None, typer.Option("--tta/--no-tta", help="Average with the mirrored series.")] = None,
    allow_outside_root: Annotated[
        bool, typer.Option("--allow-outside-root", help="Accept absolute or `..` paths in the CSV.")
    ] = False,
) -> str:
    """One `p_abnormal,p_acl,p_meniscus` row per exam, in input order, no header."""
    from radlab.tasks.mrnet.predict import describe, predict_csv

    summary = predict_csv(
        input_csv,
        output_csv,
        options.models,
        data_root,
        tta_hflip=tta,
        allow_outside_root=allow_outside_root,
        **options.engine_kwargs(),
    )
    return f"{describe(summary)} -> {output_csv}"


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
    from radlab.tasks.mrnet.evaluate import evaluate_files

    scores, details = evaluate_files(truth, predictions_csv, data_root, paths)
    print(json.dumps({**scores, "details": details} if as_json else scores))


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write MRNet-v1.0/ into.")],
    exams: Annotated[int, typer.Option(help="Exams in train + valid.", min=8)] = 200,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
) -> None:
    """Synthetic MRNet-v1.0: official layout and CSVs, uint8 volumes, learnable findings per plane."""
    from radlab.core.console import info
    from radlab.tasks.mrnet.synth import synthesize_mrnet

    counts = synthesize_mrnet(out, exams=exams, seed=seed)
    info(f"wrote {out / 'MRNet-v1.0'}: train {counts['train']}, valid {counts['valid']}")


TASK = Task(
    name="mrnet",
    help="MRNet: knee MRI, 3 planes x 3 labels (abnormal, ACL, meniscus); AUROC.",
    data_help="Folder holding MRNet-v1.0/ (or MRNet-v1.0).",
    train_help="Train every (plane, task) network, then the logistic fusion per task; keeps the best validation "
    "loss.\n\nWith --folds K: K runs, each validated on one fold of the train split (stratified on abnormal).",
    config=MRNetConfig,
    package=__name__,
    objective=Objective("Average_AUROC", "maximize", "val/auroc"),
    training=Lazy("radlab.tasks.mrnet.recipe:TRAINING"),
    load=Lazy("radlab.tasks.mrnet.predict:load_run"),
    predict=predict,
    evaluate=evaluate,
    synth=synth,
    train_options=(
        TrainOption("planes", "train.planes", "Comma-separated subset of axial,coronal,sagittal."),
        TrainOption("tasks", "train.tasks", "Comma-separated subset of abnormal,acl,meniscus."),
    ),
    report=Lazy("radlab.tasks.mrnet.views:sections"),
    explain=Lazy("radlab.tasks.mrnet.views:explain"),
    export=Lazy("radlab.tasks.mrnet.predict:EXPORT"),
    bench=Lazy("radlab.tasks.mrnet.bench:BENCH"),
    codalab=Codalab(
        files=("config.yaml", "fusion.json", "units/*/model.safetensors"),
        usage="PATHS_CSV PREDICTIONS_CSV",
        predict=Lazy("radlab.tasks.mrnet.predict:codalab_predict"),
    ),
    demo=Lazy("radlab.tasks.mrnet.synth:DEMO"),
    position=1,
)
