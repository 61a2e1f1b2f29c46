"""`radlab demo --task T` for every task: synthetic data, training (cpu-small), prediction and the official
evaluation in one folder, with progress lines, a results table and the evaluator's JSON line on stdout.

A task's `DemoSpec` subclass says how to make its data, what to predict and how to score it; the contract
tests use the same spec for their tiny round trips.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from radlab.core.task import Task


@dataclass(frozen=True)
class Evaluation:
    """What the demo's last step found: the evaluator's JSON line (printed on stdout) and a table."""

    official: dict[str, Any]
    table: Any
    result: dict[str, Any]


class DemoSpec(ABC):
    """How a task's demo (and its contract tests) run: subclass it, say `what` is synthesised, the name of
    the prediction file and the published figure to compare with, and implement the methods."""

    what: ClassVar[str]
    output_name: ClassVar[str] = "predictions.csv"
    reference: ClassVar[str] = ""

    @abstractmethod
    def synth(self, data: Path, seed: int, **sizes: Any) -> str:
        """Write the synthetic data set into `data` (sizes: the task's synth keywords, `workers` among them);
        return a one-line description."""

    @abstractmethod
    def predict_args(self, data: Path, run: Path, output: Path) -> list[str]:
        """The arguments of `radlab TASK predict` after the verb (input, output, the task's own options),
        without `--model`."""

    @abstractmethod
    def inputs(self, data: Path) -> Sequence[Path]:
        """The files that predict reads."""

    @abstractmethod
    def evaluate(self, data: Path, output: Path, metrics: dict[str, Any]) -> Evaluation:
        """Score the prediction file with the official evaluator (`metrics`: the training run's)."""

    @abstractmethod
    def scores(self, output: Path) -> Any:
        """The prediction file read back as numbers comparable between two predictions."""

    @abstractmethod
    def explain_input(self, data: Path) -> Path:
        """One input file for `radlab explain`."""


def run_demo(task: Task, out: Path, overrides: Sequence[str] = (), seed: int = 0, **sizes: Any) -> dict[str, Any]:
    """The whole pipeline of `task` in `out` (data/, run/, the prediction file); returns what was scored."""
    from rich.console import Console

    from radlab.core.engine.driver import train
    from radlab.core.engine.ensemble import describe_ensemble, is_ensemble, read_manifest

    if task.demo is None:
        from radlab.core.errors import RadlabError

        raise RadlabError(f"{task.name} has no demo")
    spec = task.demo.get()
    console = Console(stderr=True)
    started = time.monotonic()
    data, run, output = out / "data", out / "run", out / spec.output_name
    console.rule(f"[bold]{task.name} demo")
    console.print(f"1/4 synthesising {spec.what} into {data}")
    console.print(f"    {spec.synth(data, seed, **sizes)}")
    console.print(f"2/4 training preset cpu-small into {run}")
    metrics = train(task, data, run, "cpu-small", list(overrides))
    if is_ensemble(run):  # `--set train.members=N` or `train.snapshots=K`: the ensemble beside its best member
        console.print(f"    {describe_ensemble(read_manifest(run), run)}")
    console.print(f"3/4 predicting into {output}")
    console.print(f"    {predict(task, spec.predict_args(data, run, output), [run])}")
    console.print("4/4 official evaluation")
    evaluation = spec.evaluate(data, output, metrics)
    console.print(evaluation.table)
    reference = f"; {spec.reference}" if spec.reference else ""
    console.print(f"finished in {time.monotonic() - started:.0f} s{reference}")
    print(json.dumps(evaluation.official))
    return evaluation.result


def predict(task: Task, args: list[str], models: Sequence[Path]) -> str:
    """`radlab TASK predict ARGS --model ...` in this process, parsed as the command line parses it; returns
    the line it prints."""
    import typer

    from radlab.core.commands import predict_command

    app = typer.Typer()
    app.command()(predict_command(task))
    model_args = [arg for model in models for arg in ("--model", str(model))]
    return str(typer.main.get_command(app).main([*args, *model_args], standalone_mode=False))
