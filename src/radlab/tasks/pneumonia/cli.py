"""`radlab pneumonia ...` commands, plus this task's `synth` and `demo` entries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

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
    help="RSNA Pneumonia: lung-opacity boxes on chest X-ray DICOMs (RetinaNet; mAP over IoU 0.40-0.75).",
    no_args_is_help=True,
)


@app.command()
def train(
    data_root: Annotated[Path, typer.Option("--data-root", help="Folder holding stage_2_train_labels.csv.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory to create (or resume).")],
    config: Annotated[str | None, typer.Option("--config", help="paper, cpu-small or a YAML file.")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: a.b=value.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out.")] = False,
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
    """Train on k-1 folds (stratified on the class), sweep score thresholds on the held-out fold.

    With --folds K: every fold of a K-fold split (train.folds=K), one run each."""
    from rich.console import Console

    from radlab.tasks.pneumonia.train import held_out_scores
    from radlab.tasks.pneumonia.train import train as run_training

    sets = [*with_trust_pickle(overrides, trust_pickle), *scaling_overrides(devices, strategy, num_nodes, accelerator)]
    metrics = train_or_folds("pneumonia", run_training, data_root, out, config, sets, resume, folds, held_out_scores)
    if not is_primary_process():  # the other processes of a DDP run stay quiet
        return
    if folds is not None:
        Console(stderr=True).print(describe_ensemble(metrics, out))
        return
    Console(stderr=True).print(
        f"kept epoch {metrics['epoch']}: validation mAP {metrics.get('map')} at score threshold "
        f"{metrics.get('score_threshold')}; sweep in {out / 'threshold_sweep.csv'}"
    )


@app.command()
def predict(
    input_dir: Annotated[Path, typer.Argument(metavar="INPUT", help="Folder of <patientId>.dcm files.")],
    output_csv: Annotated[Path, typer.Argument(metavar="OUTPUT_CSV", help="Kaggle submission to write.")],
    model: Annotated[list[Path], typer.Option("--model", help="Run directory or --folds ensemble; repeat to add.")],
    threshold: Annotated[float | None, typer.Option(help="Score threshold (default: the run's sweep).")] = None,
    use_global: Annotated[
        bool | None, typer.Option("--use-global/--no-global", help="Weigh scores by the global head.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per forward pass.")] = None,
    workers: Annotated[int | None, typer.Option(help="Decoding processes.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on an unreadable DICOM.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    engine: EngineOption = "torch",
) -> None:
    """`patientId,PredictionString` with `conf x y w h` groups in original pixels, one row per DICOM."""
    from radlab.core.console import info
    from radlab.tasks.pneumonia.predict import describe, predict_folder

    summary = predict_folder(
        input_dir,
        output_csv,
        model,
        threshold=threshold,
        use_global=use_global,
        batch_size=batch_size,
        num_workers=workers,
        strict=strict,
        device=device,
        engine=engine,
    )
    info(f"{describe(summary)} -> {output_csv}")


@app.command()
def evaluate(
    truth: Annotated[Path, typer.Argument(metavar="TRUTH_CSV", help="stage_2_train_labels.csv-format boxes.")],
    submission: Annotated[Path, typer.Argument(metavar="PREDICTIONS_CSV", help="A Kaggle submission.")],
    strictly_greater: Annotated[
        bool, typer.Option("--gt", help="A hit needs IoU > t (Kaggle's text) not >= t.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Pretty-print (the output is JSON either way).")] = False,
) -> None:
    """mAP over IoU thresholds 0.40..0.75 and the precision at each, as JSON."""
    from radlab.tasks.pneumonia.evaluate import evaluate_files

    scores = evaluate_files(truth, submission, ">" if strictly_greater else ">=")
    print(json.dumps(scores, indent=2 if as_json else None))


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the challenge's files into.")],
    patients: Annotated[int, typer.Option(help="Patients in train + test.", min=4)] = 400,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    size: Annotated[int, typer.Option(help="Image side in pixels (the real images are 1024).", min=64)] = 1024,
) -> None:
    """Synthetic chest X-rays as JPEG-Baseline DICOMs with the two label CSVs and a test folder."""
    from radlab.core.console import info
    from radlab.tasks.pneumonia.synth import synthesize_pneumonia

    counts = synthesize_pneumonia(out, patients=patients, seed=seed, size=size)
    info(f"wrote {out}: train {counts['train']}, test {counts['test']}")


def demo(out: Path) -> None:
    """Synthetic DICOMs, cpu-small training, test-folder prediction and evaluation, in `out`."""
    from radlab.tasks.pneumonia.demo import run_demo

    run_demo(out)
