"""`radlab ich ...` commands, plus this task's `synth` and `demo` entries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from radlab.core.config import with_trust_pickle
from radlab.core.engine.ensemble import describe_ensemble
from radlab.core.engine.scaling import (
    Accelerator,
    Devices,
    Folds,
    NumNodes,
    Strategy,
    scaling_overrides,
    train_or_folds,
)
from radlab.core.engine.session import is_primary_process
from radlab.core.infer.engines import EngineOption

app = typer.Typer(
    help="RSNA ICH: six hemorrhage labels per head CT slice (slice CNN + sequence BiLSTM; weighted log loss).",
    no_args_is_help=True,
)


@app.command()
def train(
    data_root: Annotated[Path, typer.Option("--data-root", help="Folder holding stage_2_train.csv.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory to create (or continue).")],
    config: Annotated[str | None, typer.Option("--config", help="paper, cpu-small or a YAML file.")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: a.b=value.")] = None,
    stage: Annotated[
        Literal["all", "slice", "embed", "sequence"],
        typer.Option(help="all; or slice / embed alone; or sequence alone from cached embeddings (fast mode)."),
    ] = "all",
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")] = False,
    trust_pickle: Annotated[
        bool,
        typer.Option("--trust-pickle", help="Let model.weights_file be a pickle (.pt/.pth): files you trust only."),
    ] = False,
    devices: Devices = None,
    strategy: Strategy = None,
    num_nodes: NumNodes = None,
    accelerator: Accelerator = None,
    folds: Folds = None,
) -> None:
    """Slice classifier, TTA embeddings, sequence model; prints both validation losses.

    With --folds K: every fold of a K-fold split (train.folds=K, grouped by patient), one run each. The scaling
    flags apply to the slice classifier; the sequence model trains on one device."""
    from functools import partial

    from rich.console import Console

    from radlab.tasks.ich.train import held_out_scores
    from radlab.tasks.ich.train import train as run_training

    sets = [*with_trust_pickle(overrides, trust_pickle), *scaling_overrides(devices, strategy, num_nodes, accelerator)]
    if folds is not None and stage != "all":
        raise typer.BadParameter("--folds trains every stage of every fold; leave --stage at all")
    train_stage = partial(run_training, stage=stage)
    metrics = train_or_folds("ich", train_stage, data_root, out, config, sets, resume, folds, held_out_scores)
    if not is_primary_process():  # the other processes of a DDP run stay quiet
        return
    if folds is not None:
        Console(stderr=True).print(describe_ensemble(metrics, out))
        return
    parts = [
        f"{name} {metrics[name]['weighted_log_loss']:.4f}" for name in ("slice_cnn", "sequence") if name in metrics
    ]
    Console(stderr=True).print(f"validation weighted log loss: {', '.join(parts) or 'n/a'}; run in {out}")


@app.command()
def predict(
    input_dir: Annotated[Path, typer.Argument(metavar="INPUT", help="Folder of ID_*.dcm slices.")],
    output_csv: Annotated[Path, typer.Argument(metavar="OUTPUT_CSV", help="Submission to write.")],
    model: Annotated[list[Path], typer.Option("--model", help="Run directory or --folds ensemble; repeat to add.")],
    batch_size: Annotated[int | None, typer.Option(help="Slices per forward pass.")] = None,
    workers: Annotated[int | None, typer.Option(help="Decoding processes.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on an unreadable DICOM.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    engine: EngineOption = "torch",
) -> None:
    """`ID,Label` with 6 rows per readable image, probabilities clipped to [1e-5, 1 - 1e-5]."""
    from radlab.core.console import info
    from radlab.tasks.ich.predict import describe, predict_folder

    summary = predict_folder(
        input_dir,
        output_csv,
        model,
        batch_size=batch_size,
        num_workers=workers,
        strict=strict,
        device=device,
        engine=engine,
    )
    info(f"{describe(summary)} -> {output_csv}")


@app.command()
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


def demo(out: Path) -> None:
    """Synthetic series, the three training stages, test-folder prediction and evaluation, in `out`."""
    from radlab.tasks.ich.demo import run_demo

    run_demo(out)
