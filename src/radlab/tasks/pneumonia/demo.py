"""`radlab demo --task pneumonia`: synthetic DICOMs -> train (cpu-small) -> predict the test folder -> mAP."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from radlab.tasks.pneumonia.evaluate import evaluate_files
from radlab.tasks.pneumonia.formats import TEST_IMAGES
from radlab.tasks.pneumonia.predict import describe, predict_folder
from radlab.tasks.pneumonia.synth import TEST_TRUTH, synthesize_pneumonia
from radlab.tasks.pneumonia.train import train


def run_demo(
    out: Path, patients: int = 400, size: int = 256, seed: int = 0, overrides: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The whole pipeline in `out`; prints the validation and test mAP and the evaluator's JSON line."""
    console = Console(stderr=True)
    started = time.monotonic()
    data, run = out / "data", out / "run"
    console.rule("[bold]RSNA Pneumonia demo")
    console.print(f"1/4 synthesising {patients} patients ({size} px JPEG-Baseline DICOMs) into {data}")
    counts = synthesize_pneumonia(data, patients=patients, seed=seed, size=size)
    console.print(f"    train {counts['train']}, test {counts['test']}")
    console.print(f"2/4 training preset cpu-small (fold 1 of 4 held out) into {run}")
    metrics = train(data, run, "cpu-small", list(overrides))
    console.print("3/4 predicting the test folder")
    submission = out / "submission.csv"
    summary = predict_folder(data / TEST_IMAGES, submission, [run])
    console.print(f"    {describe(summary)} -> {submission}")
    console.print("4/4 evaluating the submission against the synthetic test truth")
    scores = evaluate_files(data / TEST_TRUTH, submission)
    table = Table(title="RSNA Pneumonia, synthetic data")
    for column in ("split", "images", "mAP", "score threshold"):
        table.add_column(column, justify="left" if column == "split" else "right")
    table.add_row("validation (fold 1)", "", _fmt(metrics.get("map")), _fmt(metrics.get("score_threshold")))
    table.add_row("test", str(scores["images"]), _fmt(scores["mAP"]), "")
    console.print(table)
    console.print(f"finished in {time.monotonic() - started:.0f} s; top private leaderboard about 0.25")
    print(json.dumps(scores))
    return {"validation": metrics, "test": scores}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
