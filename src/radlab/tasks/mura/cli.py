"""`radlab mura ...` commands, plus this task's `synth`, `codalab` and `demo` entries.

Heavy imports (torch, lightning) happen inside the commands so `radlab --help` stays fast.
"""

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
    help="MURA: study-level normal/abnormal from bone X-rays (DenseNet-169, Cohen's kappa).",
    no_args_is_help=True,
)


@app.command()
def train(
    data_root: Annotated[Path, typer.Option("--data-root", help="Folder holding MURA-v1.1/ (or MURA-v1.1 itself).")],
    out: Annotated[Path, typer.Option("--out", help="Run directory to create (or resume).")],
    config: Annotated[str | None, typer.Option("--config", help="Preset name (paper, cpu-small) or YAML file.")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: a.b=value.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
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
    """Train on the train split, validate on the valid split; keeps the best validation kappa.

    With --folds K: K runs, each validated on one fold of the train split (grouped by patient)."""
    from radlab.tasks.mura.demo import results_table
    from radlab.tasks.mura.train import held_out_scores
    from radlab.tasks.mura.train import train as run_training

    sets = [*with_trust_pickle(overrides, trust_pickle), *scaling_overrides(devices, strategy, num_nodes, accelerator)]
    metrics = train_or_folds("mura", run_training, data_root, out, config, sets, resume, folds, held_out_scores)
    if not is_primary_process():  # the other processes of a DDP run stay quiet
        return
    from rich.console import Console

    console = Console(stderr=True)
    if folds is not None:
        console.print(describe_ensemble(metrics, out))
        return
    console.print(results_table(metrics["study_level"]))
    console.print(f"kept epoch {metrics['epoch']} ({metrics['monitor']}); model in {out / 'model.safetensors'}")


@app.command()
def predict(
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT", help="Headerless image-paths CSV.")],
    output_csv: Annotated[Path, typer.Argument(metavar="OUTPUT_CSV", help="CodaLab predictions to write.")],
    model: Annotated[Path, typer.Option("--model", help="Run directory, or a --folds ensemble (averaged).")],
    data_root: Annotated[Path, typer.Option("--data-root", help="Folder the CSV paths are relative to.")] = Path("."),
    threshold: Annotated[float | None, typer.Option(help="Abnormal if p > threshold (default: the run's).")] = None,
    tta: Annotated[bool | None, typer.Option("--tta/--no-tta", help="Average with the mirrored image.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per forward pass.")] = None,
    workers: Annotated[int | None, typer.Option(help="Decoding processes.")] = None,
    probs: Annotated[Path | None, typer.Option("--probs", help="Also write study probabilities here.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on the first unreadable image.")] = False,
    allow_outside_root: Annotated[
        bool, typer.Option("--allow-outside-root", help="Accept absolute or `..` paths in the CSV.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, ...")] = "auto",
    engine: EngineOption = "torch",
) -> None:
    """Write one `study/,label` row per study (CodaLab format), in first-seen order."""
    from radlab.core.console import info
    from radlab.tasks.mura.predict import describe, predict_csv

    summary = predict_csv(
        input_csv,
        output_csv,
        model,
        data_root,
        threshold=threshold,
        tta_hflip=tta,
        batch_size=batch_size,
        num_workers=workers,
        strict=strict,
        allow_outside_root=allow_outside_root,
        probabilities_csv=probs,
        device=device,
        engine=engine,
    )
    info(f"{describe(summary)} -> {output_csv}")


@app.command()
def evaluate(
    truth_csv: Annotated[Path, typer.Argument(metavar="TRUTH_CSV", help="*_labeled_studies.csv (or test format).")],
    predictions_csv: Annotated[Path, typer.Argument(metavar="PREDICTIONS_CSV", help="CodaLab predictions.")],
    as_json: Annotated[bool, typer.Option("--json", help="Add sensitivity, specificity, confusion, AUROC.")] = False,
    probs: Annotated[Path | None, typer.Option("--probs", help="Study probabilities, for AUROC.")] = None,
) -> None:
    """The official MURA evaluator: prints its JSON line (kappa and interval per body part, overall)."""
    from radlab.tasks.mura.evaluate import evaluate_files

    official, details = evaluate_files(truth_csv, predictions_csv, probs)
    print(json.dumps({**official, "details": details} if as_json else official))


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write MURA-v1.1/ into.")],
    studies: Annotated[int, typer.Option(help="Studies in train + valid.", min=14)] = 600,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
) -> None:
    """Synthetic MURA-v1.1: official layout and CSVs, learnable findings, RGB/LA/inverted quirks."""
    from radlab.core.console import info
    from radlab.tasks.mura.synth import synthesize_mura

    counts = synthesize_mura(out, studies=studies, seed=seed)
    info(f"wrote {out / 'MURA-v1.1'}: train {counts['train']}, valid {counts['valid']}")


def codalab(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a trained model.")],
    out_dir: Annotated[Path, typer.Argument(help="Bundle folder to create (holds src/).")],
) -> None:
    """A self-contained bundle: `python src/predict.py valid_image_paths.csv predictions.csv`."""
    from radlab.core.console import info
    from radlab.tasks.mura.codalab import build_bundle

    entry = build_bundle(run_dir, out_dir)
    info(f"wrote {entry}; run it as: python {entry.relative_to(out_dir)} valid_image_paths.csv predictions.csv")


def demo(out: Path) -> None:
    """Synthetic data, cpu-small training, prediction and the official evaluation, in `out`."""
    from radlab.tasks.mura.demo import run_demo

    run_demo(out)
