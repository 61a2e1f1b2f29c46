"""`radlab demo --task mrnet`: synthetic exams -> train (cpu-small) -> predict -> evaluate, on the CPU."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from radlab.core.io.atomic import atomic_write_text
from radlab.tasks.mrnet.evaluate import KEYS, evaluate_files
from radlab.tasks.mrnet.formats import PLANES, ROOT_NAME, read_split_labels
from radlab.tasks.mrnet.predict import describe, predict_csv
from radlab.tasks.mrnet.synth import synthesize_mrnet
from radlab.tasks.mrnet.train import train

PAPER_TEST_AUROC = {"abnormal": 0.937, "acl": 0.965, "meniscus": 0.847}


def write_paths_csv(data_root: Path, split: str, out: Path, seed: int = 0) -> None:
    """The prediction input: three paths per exam, the planes of each exam in a shuffled order."""
    rng = np.random.default_rng(seed)
    ids, _ = read_split_labels(data_root, split)
    lines = []
    for exam_id in ids:
        for plane in rng.permutation(PLANES):
            lines.append(f"{ROOT_NAME}/{split}/{plane}/{exam_id}.npy")
    atomic_write_text(out, "\n".join(lines) + "\n")


def run_demo(out: Path, exams: int = 200, seed: int = 0, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """The whole MRNet pipeline in `out`; prints a table and the official JSON line."""
    console = Console(stderr=True)
    started = time.monotonic()
    data, run = out / "data", out / "run"
    console.rule("[bold]MRNet demo")
    console.print(f"1/4 synthesising {exams} exams into {data}")
    counts = synthesize_mrnet(data, exams=exams, seed=seed)
    console.print(f"    train {counts['train']}, valid {counts['valid']}")
    console.print(f"2/4 training preset cpu-small into {run}")
    train(data, run, "cpu-small", list(overrides))
    console.print("3/4 predicting the valid split (three paths per exam, planes shuffled)")
    paths, predictions = out / "valid-paths.csv", out / "predictions.csv"
    write_paths_csv(data, "valid", paths, seed)
    summary = predict_csv(paths, predictions, run, data_root=data)
    console.print(f"    {describe(summary)} -> {predictions}")
    console.print("4/4 evaluation")
    scores, details = evaluate_files("valid", predictions, data_root=data, paths_csv=paths)
    table = Table(title="MRNet, synthetic valid split")
    for column in ("label", "exams", "positives", "AUROC", "sens", "spec", "paper (test)"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for task, key in KEYS.items():
        entry = details[task]
        table.add_row(
            task,
            str(entry["n"]),
            str(entry["positives"]),
            _fmt(scores[key]),
            _fmt(entry["sensitivity"]),
            _fmt(entry["specificity"]),
            f"{PAPER_TEST_AUROC[task]:.3f}",
        )
    console.print(table)
    console.print(f"finished in {time.monotonic() - started:.0f} s")
    print(json.dumps(scores))
    return scores


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
