"""`radlab mrnet ...` commands, plus this task's `synth`, `codalab` and `demo` entries."""

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
    help="MRNet: knee MRI, 3 planes x 3 labels (abnormal, ACL, meniscus); AUROC.",
    no_args_is_help=True,
)


@app.command()
def train(
    data_root: Annotated[Path, typer.Option("--data-root", help="Folder holding MRNet-v1.0/ (or MRNet-v1.0).")],
    out: Annotated[Path, typer.Option("--out", help="Run directory to create (or resume).")],
    config: Annotated[str | None, typer.Option("--config", help="paper, per-plane, cpu-small or a YAML file.")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: a.b=value.")] = None,
    planes: Annotated[str | None, typer.Option(help="Comma-separated subset of axial,coronal,sagittal.")] = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated subset of abnormal,acl,meniscus.")] = None,
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
    """Train every (plane, task) network, then the logistic fusion per task; keeps the best validation loss.

    With --folds K: K runs, each validated on one fold of the train split (stratified on abnormal)."""
    from rich.console import Console

    from radlab.tasks.mrnet.train import held_out_scores
    from radlab.tasks.mrnet.train import train as run_training

    sets = [*with_trust_pickle(overrides, trust_pickle), *scaling_overrides(devices, strategy, num_nodes, accelerator)]
    if planes:
        sets.append(f"train.planes=[{planes}]")
    if tasks:
        sets.append(f"train.tasks=[{tasks}]")
    metrics = train_or_folds("mrnet", run_training, data_root, out, config, sets, resume, folds, held_out_scores)
    if not is_primary_process():  # the other processes of a DDP run stay quiet
        return
    if folds is not None:
        Console(stderr=True).print(describe_ensemble(metrics, out))
        return
    Console(stderr=True).print(f"valid: {json.dumps(metrics['valid'])}; fusion and weights in {out}")


@app.command()
def predict(
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT", help="Headerless CSV, three .npy paths per exam.")],
    output_csv: Annotated[Path, typer.Argument(metavar="OUTPUT_CSV", help="Submission to write.")],
    model: Annotated[Path, typer.Option("--model", help="Run directory, or a --folds ensemble (averaged).")],
    data_root: Annotated[Path, typer.Option("--data-root", help="Folder the CSV paths are relative to.")] = Path("."),
    tta: Annotated[bool | None, typer.Option("--tta/--no-tta", help="Average with the mirrored series.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Exams per forward pass.")] = None,
    workers: Annotated[int | None, typer.Option(help="Loading processes.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on a missing or unreadable plane.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    allow_outside_root: Annotated[
        bool, typer.Option("--allow-outside-root", help="Accept absolute or `..` paths in the CSV.")
    ] = False,
    engine: EngineOption = "torch",
) -> None:
    """One `p_abnormal,p_acl,p_meniscus` row per exam, in input order, no header."""
    from radlab.core.console import info
    from radlab.tasks.mrnet.predict import describe, predict_csv

    summary = predict_csv(
        input_csv,
        output_csv,
        model,
        data_root,
        batch_size=batch_size,
        num_workers=workers,
        tta_hflip=tta,
        strict=strict,
        device=device,
        allow_outside_root=allow_outside_root,
        engine=engine,
    )
    info(f"{describe(summary)} -> {output_csv}")


@app.command()
def evaluate(
    truth: Annotated[
        Path, typer.Argument(metavar="TRUTH_CSV", help="abnormal,acl,meniscus rows; or with --data-root a split name.")
    ],
    predictions_csv: Annotated[Path, typer.Argument(metavar="PREDICTIONS_CSV", help="The submission.")],
    data_root: Annotated[Path | None, typer.Option("--data-root", help="Use the official label CSVs here.")] = None,
    paths: Annotated[Path | None, typer.Option("--paths", help="The input paths CSV, for the exam order.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Add per-label sensitivity and specificity at 0.5.")] = False,
) -> None:
    """AUROC per label and their mean, as JSON (`Abnormal_AUROC`, `ACL_AUROC`, `Meniscus_AUROC`, `Average_AUROC`)."""
    from radlab.tasks.mrnet.evaluate import evaluate_files

    scores, details = evaluate_files(truth, predictions_csv, data_root, paths)
    print(json.dumps({**scores, "details": details} if as_json else scores))


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write MRNet-v1.0/ into.")],
    exams: Annotated[int, typer.Option(help="Exams in train + valid.", min=8)] = 200,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
) -> None:
    """Synthetic MRNet-v1.0: official layout and CSVs, uint8 volumes, learnable findings per plane."""
    from radlab.core.console import info
    from radlab.tasks.mrnet.synth import synthesize_mrnet

    counts = synthesize_mrnet(out, exams=exams, seed=seed)
    info(f"wrote {out / 'MRNet-v1.0'}: train {counts['train']}, valid {counts['valid']}")


def codalab(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a trained model.")],
    out_dir: Annotated[Path, typer.Argument(help="Bundle folder to create (holds src/).")],
) -> None:
    """A self-contained bundle: `python src/predict.py valid-paths.csv predictions.csv`."""
    from radlab.core.console import info
    from radlab.tasks.mrnet.codalab import build_bundle

    entry = build_bundle(run_dir, out_dir)
    info(f"wrote {entry}; run it as: python {entry.relative_to(out_dir)} valid-paths.csv predictions.csv")


def demo(out: Path) -> None:
    """Synthetic exams, cpu-small training, prediction and evaluation, in `out`."""
    from radlab.tasks.mrnet.demo import run_demo

    run_demo(out)
