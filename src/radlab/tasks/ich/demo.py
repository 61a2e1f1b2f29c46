"""`radlab demo --task ich`: synthetic CT series -> slice CNN -> embeddings -> sequence model -> evaluation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from radlab.tasks.ich.evaluate import evaluate_files
from radlab.tasks.ich.formats import SUBTYPES, TEST_IMAGES
from radlab.tasks.ich.predict import describe, predict_folder
from radlab.tasks.ich.synth import TEST_TRUTH, synthesize_ich
from radlab.tasks.ich.train import train


def run_demo(
    out: Path, series: int = 60, size: int = 128, seed: int = 0, overrides: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The whole pipeline in `out`; prints the slice CNN's and the sequence model's validation losses."""
    console = Console(stderr=True)
    started = time.monotonic()
    data, run = out / "data", out / "run"
    console.rule("[bold]RSNA ICH demo")
    console.print(f"1/4 synthesising {series} CT series ({size} px) into {data}")
    counts = synthesize_ich(data, series=series, seed=seed, size=size)
    console.print(f"    train {counts['train']}, test {counts['test']}")
    console.print(f"2/4 training preset cpu-small (slice CNN, embeddings, sequence model) into {run}")
    metrics = train(data, run, "cpu-small", list(overrides))
    console.print("3/4 predicting the test folder")
    submission = out / "submission.csv"
    console.print(f"    {describe(predict_folder(data / TEST_IMAGES, submission, [run]))} -> {submission}")
    console.print("4/4 evaluating the submission against the synthetic test truth")
    test = evaluate_files(data / TEST_TRUTH, submission)
    table = Table(title="RSNA ICH, weighted log loss (lower is better)")
    for column in ("", "slice CNN (validation)", "sequence model (validation)", "submission (test)"):
        table.add_column(column, justify="left" if not column else "right")
    for key in ("weighted_log_loss", *(f"{s}_log_loss" for s in SUBTYPES)):
        table.add_row(
            key.removesuffix("_log_loss"),
            _fmt(metrics["slice_cnn"][key]),
            _fmt(metrics["sequence"][key]),
            _fmt(test[key]),
        )
    console.print(table)
    console.print(f"finished in {time.monotonic() - started:.0f} s; 2nd-place single model 0.046 (private LB)")
    print(json.dumps(test))
    return {"validation": metrics, "test": test}


def _fmt(value: float) -> str:
    return f"{value:.4f}"
