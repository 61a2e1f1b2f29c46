"""MURA: study-level normal/abnormal from musculoskeletal radiographs (Rajpurkar et al. 2018).

This module registers the task (`TASK`, the `radlab.tasks` entry point) and holds its own command
functions; they import the task's heavy parts when they run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radlab.core.task import Codalab, Lazy, Objective, PredictOptions, Task
from radlab.tasks.mura.config import MuraConfig


def predict(
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT", help="Headerless image-paths CSV.")],
    output_csv: Annotated[Path, typer.Argument(metavar="OUTPUT_CSV", help="CodaLab predictions to write.")],
    options: PredictOptions,
    data_root: Annotated[Path, typer.Option("--data-root", help="Folder the CSV paths are relative to.")] = Path("."),
    threshold: Annotated[float | None, typer.Option(help="Abnormal if p > threshold (default: the run's).")] = None,
    tta: Annotated[bool | None, typer.Option("--tta/--no-tta", help="Average with the mirrored image.")] = None,
    probs: Annotated[Path | None, typer.Option("--probs", help="Also write study probabilities here.")] = None,
    allow_outside_root: Annotated[
        bool, typer.Option("--allow-outside-root", help="Accept absolute or `..` paths in the CSV.")
    ] = False,
) -> str:
    """Write one `study/,label` row per study (CodaLab format), in first-seen order."""
    from radlab.tasks.mura.predict import describe, predict_csv

    summary = predict_csv(
        input_csv,
        output_csv,
        options.models,
        data_root,
        threshold=threshold,
        tta_hflip=tta,
        probabilities_csv=probs,
        allow_outside_root=allow_outside_root,
        **options.engine_kwargs(),
    )
    return f"{describe(summary)} -> {output_csv}"


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


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write MURA-v1.1/ into.")],
    studies: Annotated[int, typer.Option(help="Studies in train + valid.", min=14)] = 600,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
) -> None:
    """Synthetic MURA-v1.1: official layout and CSVs, learnable findings, RGB/LA/inverted quirks."""
    from radlab.core.console import info
    from radlab.tasks.mura.synth import synthesize_mura

    counts = synthesize_mura(out, studies=studies, seed=seed)
    info(f"wrote {out / 'MURA-v1.1'}: train {counts['train']}, valid {counts['valid']}")


TASK = Task(
    name="mura",
    help="MURA: study-level normal/abnormal from bone X-rays (DenseNet-169, Cohen's kappa).",
    data_help="Folder holding MURA-v1.1/ (or MURA-v1.1 itself).",
    train_help="Train on the train split, validate on the valid split; keeps the best validation kappa.\n\n"
    "With --folds K: K runs, each validated on one fold of the train split (grouped by patient).",
    config=MuraConfig,
    package=__name__,
    objective=Objective("kappa", "maximize", "val/kappa"),
    training=Lazy("radlab.tasks.mura.recipe:TRAINING"),
    load=Lazy("radlab.tasks.mura.predict:load_run"),
    predict=predict,
    evaluate=evaluate,
    synth=synth,
    report=Lazy("radlab.tasks.mura.views:sections"),
    explain=Lazy("radlab.tasks.mura.views:explain"),
    export=Lazy("radlab.tasks.mura.predict:EXPORT"),
    bench=Lazy("radlab.tasks.mura.bench:BENCH"),
    codalab=Codalab(
        files=("config.yaml", "model.safetensors", "data_stats.json", "metrics.json"),
        usage="IMAGE_PATHS_CSV PREDICTIONS_CSV",
        predict=Lazy("radlab.tasks.mura.predict:codalab_predict"),
    ),
    demo=Lazy("radlab.tasks.mura.synth:DEMO"),
    position=0,
)
