"""What every `radlab TASK train` shares for scaling out: the Lightning launch flags (devices, strategy,
nodes) as `--set` overrides, and `--folds K` running every fold into one ensemble folder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from radlab.core.engine.ensemble import train_folds
from radlab.core.engine.session import is_primary_process

Devices = Annotated[
    str | None,
    typer.Option(
        "--devices",
        help="Devices per machine: N, -1 for all, or a list such as 0,1 (Lightning's `devices`).",
        rich_help_panel="Scaling out",
    ),
]
Strategy = Annotated[
    str | None,
    typer.Option(
        "--strategy",
        help="auto, ddp, ddp_spawn, fsdp, ... (Lightning's names); ddp runs one process per device.",
        rich_help_panel="Scaling out",
    ),
]
NumNodes = Annotated[
    int | None,
    typer.Option(
        "--num-nodes",
        min=1,
        help="Machines in the job; start the same command on each (torchrun or srun).",
        rich_help_panel="Scaling out",
    ),
]
Accelerator = Annotated[
    str | None,
    typer.Option("--accelerator", help="auto, cpu, gpu, cuda, mps.", rich_help_panel="Scaling out"),
]
Folds = Annotated[
    int | None,
    typer.Option(
        "--folds",
        min=2,
        help="Train all K folds of a K-fold split: OUT/fold<i>/ each, plus OUT/ensemble.json for predict.",
        rich_help_panel="Scaling out",
    ),
]


def scaling_overrides(
    devices: str | None = None,
    strategy: str | None = None,
    num_nodes: int | None = None,
    accelerator: str | None = None,
    section: str = "train",
) -> list[str]:
    """The launch flags as `--set` overrides of the engine section (they land in the run's config.yaml)."""
    values = {"devices": devices, "strategy": strategy, "num_nodes": num_nodes, "accelerator": accelerator}
    return [f"{section}.{key}={value}" for key, value in values.items() if value is not None]


TrainFunction = Callable[[Path, Path, str | None, list[str], bool], dict[str, Any]]
"""A task's train(data_root, out, config_name, overrides, resume) -> metrics."""


def train_or_folds(
    task: str,
    train: TrainFunction,
    data_root: Path,
    out: Path,
    config_name: str | None,
    overrides: Sequence[str],
    resume: bool,
    folds: int | None,
    score: Callable[[dict[str, Any]], dict[str, float | None]],
    section: str = "train",
) -> dict[str, Any]:
    """One run, or with `folds` every fold plus the ensemble manifest (see ensemble.train_folds)."""
    if folds is None:
        return train(data_root, out, config_name, list(overrides), resume)

    def one_fold(target: Path, sets: list[str], fold_resume: bool) -> dict[str, Any]:
        return train(data_root, target, None if fold_resume else config_name, sets, fold_resume)

    return train_folds(task, out, folds, one_fold, overrides, resume, score, section, write=is_primary_process())
