"""The `radlab` command: one Typer app generated from the task registry (core/task.py).

Every registered task gets `radlab TASK train|predict|evaluate` (train and predict built in
core/commands.py), `radlab synth TASK` and, where it has the capability, `radlab codalab TASK`; `demo`,
`report`, `export`, `bench`, `explain` and `tune` take any task. Nothing here imports torch: the commands
import what they run.

Exit codes (shared/spec/cli.md): 0 success, 2 usage error, 1 data error with a one-line message.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from radlab.core.commands import codalab_command, merge_command, predict_command, synth_command, train_command
from radlab.core.console import info
from radlab.core.errors import Interrupted, RadlabConfigError, RadlabDataError, RadlabError, exit_code_of
from radlab.core.task import Task, get_task, task_names, task_of_run, tasks

DEMO_MARKER = ".radlab-demo"
# Known noise from libraries (deprecations inside Lightning, expected states on resume); filtered only
# while a radlab command runs, never at import.
_NOISE = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r"Checkpoint directory .* exists and is not empty.*",
    r".*does not have many workers which may be a bottleneck.*",
)

app = typer.Typer(
    name="radlab",
    help="Reproducible recipes, official formats and metrics for medical-imaging challenges.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
synth_app = typer.Typer(help="Write synthetic data in a challenge's official layout.", no_args_is_help=True)
codalab_app = typer.Typer(help="Package a trained run as a CodaLab submission bundle.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Measure radlab against the seeds' way on the same inputs, in one run.", no_args_is_help=True
)
app.add_typer(synth_app, name="synth")
app.add_typer(bench_app, name="bench")
app.add_typer(codalab_app, name="codalab")

for _task in tasks():
    _task_app = typer.Typer(help=_task.help, no_args_is_help=True)
    _task_app.command("train")(train_command(_task))
    _task_app.command("predict")(predict_command(_task))
    _task_app.command("evaluate")(_task.evaluate)
    if _task.merge is not None:
        _task_app.command("merge")(merge_command(_task))
    app.add_typer(_task_app, name=_task.name)
    synth_app.command(_task.name)(synth_command(_task))
    if _task.codalab is not None:
        codalab_app.command(_task.name)(codalab_command(_task))


def _task_option(value: str) -> Task:
    try:
        return get_task(value)
    except RadlabConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def demo(
    task: Annotated[str, typer.Option(help=f"One of {', '.join(task_names())}, or all.")] = "mura",
    out: Annotated[Path, typer.Option(help="Folder for data, runs and outputs.")] = Path("radlab-demo"),
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value on top of cpu-small, e.g. train.snapshots=3 (repeatable)."),
    ] = None,
) -> None:
    """Synthetic data -> train (cpu-small) -> predict -> evaluate -> report, on the CPU in minutes."""
    from radlab.core.demo import run_demo
    from radlab.core.report import report_run

    chosen = [t for t in tasks() if t.demo is not None] if task == "all" else [_task_option(task)]
    for one in chosen:
        target = prepare_demo_folder(out, one.name)
        run_demo(one, target, overrides=set_ or ())
        run = target / "run"
        if (run / "config.yaml").is_file():
            info(f"report: {report_run(run)}")
        else:  # an ensemble of runs (train.members): each member has its own report
            info(f"an ensemble of runs in {run}: `radlab report {run}/member0` reports one of them")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `radlab TASK train`.")],
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default RUN_DIR/report.html).")] = None,
) -> None:
    """One self-contained HTML file: config, training curves, curves and tables, pictures of the model's view."""
    from radlab.core.report import report_run

    info(f"report written: {report_run(run_dir, out)}")


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `radlab TASK train`.")],
    format: Annotated[str, typer.Option("--format", help="onnx (opset 17).")] = "onnx",
    int8: Annotated[bool, typer.Option("--int8", help="Also write model.int8.onnx (static quantisation).")] = False,
    calibration: Annotated[int, typer.Option(min=1, help="Training images that calibrate the int8 model.")] = 64,
    int8_method: Annotated[
        str, typer.Option(help="How int8 activation ranges are calibrated: minmax or percentile (99.999th).")
    ] = "minmax",
    int8_keep_float: Annotated[
        str, typer.Option(help="Layers left float in the int8 model: none, or ends (the first and the last).")
    ] = "none",
    data_root: Annotated[
        Path | None, typer.Option(help="The training data (default: the folder the run was trained on).")
    ] = None,
) -> None:
    """RUN/model.onnx for `predict --engine onnx` (and RUN/model.int8.onnx for `--engine int8`)."""
    if format != "onnx":
        raise typer.BadParameter(f"unknown format {format!r}; onnx is the one radlab writes")
    from radlab.core.infer.export import export_run

    export_run(
        task_of_run(run_dir),
        run_dir,
        int8=int8,
        calibration=calibration,
        data_root=data_root,
        int8_method=int8_method,
        keep_float=int8_keep_float,
    )


def _print_bench(result: dict[str, Any], as_json: bool) -> None:
    import json

    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        info(f"{key}: {json.dumps(value)}")


@bench_app.command("infer")
def bench_infer(
    task: Annotated[str, typer.Option(help="The task to measure.")] = "mura",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    images: Annotated[
        int | None, typer.Option(min=1, help="Synthetic items to predict: images, exams or slices, as the task reads.")
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Interleaved timed repeats (median ratio).")] = 3,
    config: Annotated[str, typer.Option(help="Preset or YAML for the model (when no --model).")] = "paper",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Config overrides, a.b=c.")] = None,
    model: Annotated[Path | None, typer.Option(help="Measure this trained run instead of a fresh model.")] = None,
    engine: Annotated[
        list[str] | None,
        typer.Option(
            help="torch, onnx, int8, openvino, openvino-int8, openvino-nncf, onnx-cuda, onnx-tensorrt (repeatable;"
            " default: every one installed)."
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option(min=0, help="Loader processes on radlab's side.")] = None,
    device: Annotated[str, typer.Option(help="Where PyTorch runs on both sides: cpu, cuda or auto.")] = "cpu",
) -> None:
    """Prediction: the reference loop against what `radlab TASK predict` runs, on the same synthetic inputs."""
    from radlab.core.bench.spec import bench_infer as measure

    result = measure(
        _task_option(task),
        items=images,
        repeats=repeats,
        config_name=config,
        overrides=set_ or [],
        model_dir=model,
        engines=tuple(engine) if engine else None,
        workers=workers,
        device=device,
    )
    _print_bench(result, as_json)


@bench_app.command("prep")
def bench_prep(
    task: Annotated[str, typer.Option(help="The task to measure.")] = "mura",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    images: Annotated[int, typer.Option(min=1, help="Synthetic files to preprocess.")] = 200,
    repeats: Annotated[int, typer.Option(min=1, help="Interleaved timed repeats (median ratio).")] = 3,
    size: Annotated[int | None, typer.Option(help="Output size in px (default: the paper preset's).")] = None,
) -> None:
    """Decoding and preprocessing: the reference against radlab's path (cache, lookup-table windowing)."""
    from radlab.core.bench.spec import bench_prep as measure

    _print_bench(measure(_task_option(task), images=images, repeats=repeats, size=size), as_json)


@bench_app.command("train")
def bench_train(
    task: Annotated[str, typer.Option(help="The task to measure.")] = "mura",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    steps: Annotated[int, typer.Option(min=1, help="Timed training steps per variant.")] = 5,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed steps first (cuDNN autotuning, caches).")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Interleaved repeats (median ratio).")] = 1,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    variant: Annotated[
        list[str] | None, typer.Option(help="fp32, bf16 (bf16 autocast + channels_last); repeatable; default both.")
    ] = None,
    config: Annotated[str, typer.Option(help="Preset or YAML to train.")] = "paper",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Config overrides, a.b=c.")] = None,
    workers: Annotated[int | None, typer.Option(min=0, help="Loader processes (default: the preset's).")] = None,
) -> None:
    """Training: items/s of fp32 against bf16 + channels_last, and the fraction of each step spent waiting on
    data, on synthetic data through the task's own training."""
    from radlab.core.bench.train import VARIANTS
    from radlab.core.bench.train import bench_train as measure

    result = measure(
        _task_option(task),
        steps=steps,
        warmup=warmup,
        repeats=repeats,
        device=device,
        variants=tuple(variant) if variant else tuple(VARIANTS),
        config_name=config,
        overrides=set_ or [],
        workers=workers,
    )
    _print_bench(result, as_json)


@app.command("inspect")
def inspect_files(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Files, or folders (walked).")],
) -> None:
    """One JSON line per image, DICOM or volume: kind, shape, dtype, DICOM tags, or the error."""
    import json

    from radlab.core.io.inspect import inspect_file, iter_files

    for path in iter_files(paths):
        print(json.dumps(inspect_file(path)), flush=True)


@app.command()
def explain(
    task: Annotated[str, typer.Argument(help=f"One of {', '.join(task_names())}.")],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="An image, DICOM, volume or a folder.")],
    model: Annotated[Path, typer.Option(help="The run directory of a trained model.")],
    out: Annotated[Path, typer.Option(help="Folder for the pictures and explanations.json.")],
) -> None:
    """Heat-maps of what a classifier looked at (CAM), or a detector's boxes, over the original image."""
    from radlab.core.explain import write_explanations

    chosen = _task_option(task)
    if chosen.explain is None:
        raise RadlabError(f"explain is not available for {chosen.name}")
    explanations = chosen.explain.get()(input_path, model)
    if not explanations:
        raise RadlabDataError(input_path, "nothing could be explained (see the warnings above)")
    written = write_explanations(out, explanations)
    for item in explanations:
        info(f"{item.name}: {item.caption}")
    info(f"{len(written)} pictures in {out} (index: {out / 'explanations.json'})")


@app.command()
def tune(
    task: Annotated[str, typer.Argument(help=f"One of {', '.join(task_names())}.")],
    data_root: Annotated[Path, typer.Option("--data-root", help="The task's data, as for `train`.")],
    trials: Annotated[int, typer.Option(min=1, help="Trials this worker runs (the study is shared by all).")],
    storage: Annotated[
        str | None,
        typer.Option(help="Study database: default sqlite file OUT/study.db; postgresql://user:pw@host/db to share."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for trial runs, best.yaml, trials.csv.")] = None,
    study_name: Annotated[str | None, typer.Option(help="Default radlab-TASK; workers with one name share.")] = None,
    config: Annotated[str | None, typer.Option(help="Preset or YAML holding the tune.space to search.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Overrides for every trial, a.b=c.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Start no trial after this many seconds.")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampler seed (give each worker its own, or none).")] = None,
) -> None:
    """Optuna search over the preset's tune.space, pruned on the per-epoch validation metric.

    Start the same command on as many machines as you like with one --storage postgresql://... URL: they share
    the study. Every worker ends by writing OUT/best.yaml (train --config OUT/best.yaml) and OUT/trials.csv."""
    from radlab.core.tune.study import run_tuning

    chosen = _task_option(task)
    folder = out or Path(f"tune-{chosen.name}")
    summary = run_tuning(
        chosen, data_root, folder, trials, storage, study_name, config, set_ or [], timeout_s=timeout, seed=seed
    )
    line = (
        f"study {summary['study']}: {summary['trials']} trials ({summary['complete']} complete, "
        f"{summary['pruned']} pruned, {summary['failed']} failed, {summary['running']} running)"
    )
    if "best_trial" in summary:
        best = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary["best_params"].items()
        )
        line += f"; best trial {summary['best_trial']}: {chosen.objective.metric} {summary['best_value']:.4f} ({best})"
        line += f"; preset {folder / 'best.yaml'}"
    info(line)


@app.command()
def serve(
    model: Annotated[
        list[Path], typer.Option(help="A trained run directory (or --folds ensemble); repeat to serve several.")
    ],
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default; README: Serving).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 8000,
    engine: Annotated[str, typer.Option(help="torch, or an engine of the files `radlab export` wrote.")] = "torch",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (engine torch).")] = "auto",
    max_batch: Annotated[int, typer.Option(min=1, help="Requests predicted together, at most.")] = 8,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="How long the first request of a batch waits for others.")
    ] = 10.0,
    queue: Annotated[int, typer.Option(min=1, help="Requests waiting at most; more are answered 503.")] = 64,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body (413 above it).")] = 256.0,
    timeout_s: Annotated[float, typer.Option(min=0.1, help="A request not answered by then gets 504.")] = 120.0,
    token_file: Annotated[
        Path | None, typer.Option(help="File holding the bearer token every endpoint but /health requires.")
    ] = None,
    stow: Annotated[str | None, typer.Option(help="DICOMweb URL to store each DICOM result on too (STOW-RS).")] = None,
) -> None:
    """An HTTP inference service for trained runs (shared/spec/serve.md): micro-batched predictions, pictures,
    DICOM results, a web page at /. Stops on SIGTERM or Ctrl-C after answering the requests in flight."""
    from radlab.core.serve.server import ServeOptions, run_server

    run_server(
        ServeOptions(
            models=model,
            host=host,
            port=port,
            engine=engine,
            device=device,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            queue=queue,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            timeout_s=timeout_s,
            token_file=token_file,
            stow=stow,
        )
    )


@app.command()
def card(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, --folds ensemble or tune folder.")],
    out: Annotated[Path | None, typer.Option(help="Markdown file to write (default RUN_DIR/MODEL_CARD.md).")] = None,
) -> None:
    """RUN/MODEL_CARD.md: intended use and misuse, data, recipe and its differences from the original, metrics
    with intervals, calibration, environment, the weights' licence and checksums."""
    from radlab.core.summary.card import write_card

    info(f"model card written: {write_card(run_dir, out)}")


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run directories, ensembles or tune folders.")],
    html: Annotated[Path | None, typer.Option(help="Also write one HTML page with every run's curves.")] = None,
) -> None:
    """The config keys in which the runs differ, then their metrics side by side (with intervals)."""
    if len(runs) < 2:
        raise typer.BadParameter("give at least two runs to compare")
    from radlab.core.summary.compare import compare as compare_runs

    typer.echo(compare_runs(runs, html), nl=False)
    if html is not None:
        info(f"comparison written: {html}")


@app.command()
def calibrate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory or an ensemble folder (each member calibrated).")],
    bins: Annotated[int, typer.Option(min=1, help="Equal-width bins of the expected calibration error.")] = 15,
) -> None:
    """Temperature scaling, one temperature per label fitted on the validation predictions, kept in
    RUN/calibration.json; predict (and serve) then write calibrated probabilities."""
    from radlab.core.calibration import calibrate as calibrate_run

    typer.echo(calibrate_run(run_dir, bins), nl=False)


def prepare_demo_folder(out: Path, task: str) -> Path:
    """`out/task`, emptied if an earlier demo made it; a folder radlab did not make is never deleted."""
    if out.exists() and any(out.iterdir()) and not (out / DEMO_MARKER).exists():
        raise RadlabError(f"{out} exists and was not made by `radlab demo`; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).touch()
    target = out / task
    if target.exists():
        shutil.rmtree(target)
    return target


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's pre-emption, `timeout`, `kill`) stops this process like Ctrl-C, with a line and
    exit 143; a loader process forked from it ends quietly instead."""
    if os.getpid() != _MAIN_PID:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise Interrupted(signal.SIGTERM)


_MAIN_PID = os.getpid()


def main() -> None:
    """Console entry point: runs the app, turning radlab's errors (and a file that cannot be read or written)
    into one line and an exit code; SIGTERM and SIGINT into exit 143 and 130."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    with warnings.catch_warnings():
        for pattern in _NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        code = exit_code_of(app)
    sys.exit(code)
