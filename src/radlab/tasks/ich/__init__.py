"""RSNA Intracranial Hemorrhage Detection: six labels per head CT slice (Kaggle 2019).

This module registers the task (`TASK`, the `radlab.tasks` entry point) and holds its own command
functions; they import the task's heavy parts when they run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radlab.core.task import Lazy, Objective, PredictOptions, Task
from radlab.tasks.ich.config import IchConfig


def predict(
    input_dir: Annotated[Path, typer.Argument(metavar="INPUT", help="Folder of ID_*.dcm slices.")],
    output_csv: Annotated[Path, typer.Argument(metavar="OUTPUT_CSV", help="Submission to write.")],
    options: PredictOptions,
) -> str:
    """`ID,Label` with 6 rows per readable image, probabilities clipped to [1e-5, 1 - 1e-5]."""
    from radlab.tasks.ich.predict import describe, predict_folder

    summary = predict_folder(input_dir, output_csv, options.models, **options.engine_kwargs())
    return f"{describe(summary)} -> {output_csv}"


def evaluate(
    truth: Annotated[Path, typer.Argument(metavar="TRUTH_CSV", help="stage_2_train.csv-format labels.")],
    submission: Annotated[Path, typer.Argument(metavar="PREDICTIONS_CSV", help="An ID,Label submission.")],
    as_json: Annotated[bool, typer.Option("--json", help="Pretty-print (the output is JSON either way).")] = False,
) -> None:
    """`weighted_log_loss` (any 2, others 1) and `<subtype>_log_loss` per subtype, as JSON."""
    from radlab.tasks.ich.evaluate import evaluate_files

    print(json.dumps(evaluate_files(truth, submission), indent=2 if as_json else None))


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the challenge's files into.")],
    series: Annotated[int, typer.Option(help="CT series in train + test.", min=5)] = 60,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    size: Annotated[int, typer.Option(help="Slice side in pixels (the real slices are 512).", min=32)] = 512,
) -> None:
    """Synthetic head CT series as int16 DICOMs with real tags and quirks, and stage_2_train.csv."""
    from radlab.core.console import info
    from radlab.tasks.ich.synth import synthesize_ich

    counts = synthesize_ich(out, series=series, seed=seed, size=size)
    info(f"wrote {out}: train {counts['train']}, test {counts['test']}")


TASK = Task(
    name="ich",
    help="RSNA ICH: six hemorrhage labels per head CT slice (slice CNN + sequence BiLSTM; weighted log loss).",
    data_help="Folder holding stage_2_train.csv.",
    train_help="Slice classifier, TTA embeddings, sequence model; prints both validation losses.\n\n"
    "With --folds K: every fold of a K-fold split (train.folds=K, grouped by patient), one run each. The scaling "
    "flags apply to the slice classifier; the sequence model trains on one device.",
    config=IchConfig,
    package=__name__,
    objective=Objective("weighted_log_loss", "minimize", "val/weighted_log_loss", key="sequence"),
    training=Lazy("radlab.tasks.ich.recipe:TRAINING"),
    load=Lazy("radlab.tasks.ich.predict:load_run"),
    predict=predict,
    evaluate=evaluate,
    synth=synth,
    stages=("slice", "embed", "sequence"),
    report=Lazy("radlab.tasks.ich.views:sections"),
    explain=Lazy("radlab.tasks.ich.views:explain"),
    export=Lazy("radlab.tasks.ich.predict:EXPORT"),
    bench=Lazy("radlab.tasks.ich.bench:BENCH"),
    demo=Lazy("radlab.tasks.ich.synth:DEMO"),
    position=3,
)
