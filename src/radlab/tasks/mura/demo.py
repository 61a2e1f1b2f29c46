"""`radlab demo --task mura`: synthetic data -> train (cpu-small) -> predict -> official evaluation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from radlab.tasks.mura.evaluate import evaluate_files
from radlab.tasks.mura.formats import ROOT_NAME
from radlab.tasks.mura.predict import describe, predict_csv
from radlab.tasks.mura.synth import synthesize_mura
from radlab.tasks.mura.train import train

PAPER_TEST_KAPPA = 0.705


def run_demo(out: Path, studies: int = 600, seed: int = 0, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the whole MURA pipeline in `out` on CPU; print a results table and the official JSON line."""
    console = Console(stderr=True)
    started = time.monotonic()
    data, run = out / "data", out / "run"
    console.rule("[bold]MURA demo")
    console.print(f"1/4 synthesising {studies} studies into {data}")
    counts = synthesize_mura(data, studies=studies, seed=seed)
    console.print(f"    train {counts['train']}, valid {counts['valid']}")
    console.print(f"2/4 training preset cpu-small into {run}")
    train(data, run, "cpu-small", list(overrides))
    console.print("3/4 predicting the valid split (CodaLab contract)")
    predictions, probabilities = out / "predictions.csv", out / "probabilities.csv"
    summary = predict_csv(
        data / ROOT_NAME / "valid_image_paths.csv",
        predictions,
        run,
        data_root=data,
        probabilities_csv=probabilities,
    )
    console.print(f"    {describe(summary)} -> {predictions}")
    console.print("4/4 official evaluation")
    official, details = evaluate_files(data / ROOT_NAME / "valid_labeled_studies.csv", predictions, probabilities)
    console.print(results_table(details, "MURA, synthetic valid split, study level"))
    console.print(f"finished in {time.monotonic() - started:.0f} s; paper's test kappa {PAPER_TEST_KAPPA}")
    print(json.dumps(official))
    return official


def results_table(details: dict[str, dict[str, Any]], title: str = "MURA, study level") -> Table:
    """Per body part: studies, kappa with the official interval, sensitivity, specificity, AUROC."""
    table = Table(title=title)
    for column in ("part", "n", "kappa", "interval", "sens", "spec", "AUROC"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for group, entry in details.items():
        interval = "" if entry["kappa"] is None else f"{entry['kappa_lower']:.3f}..{entry['kappa_upper']:.3f}"
        table.add_row(
            group,
            str(entry["n"]),
            _fmt(entry["kappa"]),
            interval,
            _fmt(entry["sensitivity"]),
            _fmt(entry["specificity"]),
            _fmt(entry.get("auroc")),
        )
    return table


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
