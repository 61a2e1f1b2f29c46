"""The `radlab` command: one Typer app; `radlab TASK VERB` dispatches to the task package.

Exit codes (shared/spec/cli.md): 0 success, 2 usage error, 1 data error with a one-line message.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from radlab.core.config import read_yaml
from radlab.core.console import info
from radlab.core.errors import RadlabDataError, RadlabError
from radlab.tasks import task_cli, task_module, task_names

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
    help="Reproducible recipes, official formats and metrics for MURA, MRNet, RSNA Pneumonia and RSNA ICH.",
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

for _name in task_names():
    _module = task_cli(_name)
    app.add_typer(_module.app, name=_name)
    synth_app.command(_name)(_module.synth)
    if hasattr(_module, "codalab"):
        codalab_app.command(_name)(_module.codalab)


@app.command()
def demo(
    task: Annotated[str, typer.Option(help=f"One of {', '.join(task_names())}, or all.")] = "mura",
    out: Annotated[Path, typer.Option(help="Folder for data, runs and outputs.")] = Path("radlab-demo"),
) -> None:
    """Synthetic data -> train (cpu-small) -> predict -> evaluate -> report, on the CPU in minutes."""
    names = task_names() if task == "all" else [task]
    if task != "all" and task not in task_names():
        raise typer.BadParameter(f"unknown task {task!r}; choose from {', '.join(task_names())} or all")
    for name in names:
        target = prepare_demo_folder(out, name)
        task_cli(name).demo(target)
        info(f"report: {write_run_report(target / 'run')}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `radlab TASK train`.")],
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default RUN_DIR/report.html).")] = None,
) -> None:
    """One self-contained HTML file: config, training curves, curves and tables, pictures of the model's view."""
    info(f"report written: {write_run_report(run_dir, out)}")


def write_run_report(run_dir: Path, out: Path | None = None) -> Path:
    """The report of a run of any task (the task is read from the run's config.yaml)."""
    from radlab.core.report import write_report

    task = run_task(run_dir)
    sections = task_module(task, "report").sections(run_dir)
    return write_report(run_dir, f"radlab {task}: {run_dir.resolve().name}", sections, out)


def run_task(run_dir: Path) -> str:
    """The task a run directory belongs to, from its config.yaml."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file() and (run_dir / "ensemble.json").is_file():
        raise RadlabDataError(run_dir, "is a --folds ensemble; give one of its folds (e.g. fold0/) to this command")
    if not config_path.is_file():
        raise RadlabDataError(config_path, "missing: not a radlab run directory (train first)")
    task = read_yaml(config_path, "run config").get("task")
    if task not in task_names():
        raise RadlabDataError(config_path, f"names no known task ({task!r})")
    return str(task)


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `radlab TASK train`.")],
    format: Annotated[str, typer.Option("--format", help="onnx (opset 17).")] = "onnx",
    int8: Annotated[bool, typer.Option("--int8", help="Also write model.int8.onnx (static quantisation).")] = False,
    calibration: Annotated[int, typer.Option(help="Training images that calibrate the int8 model.")] = 64,
    data_root: Annotated[
        Path | None, typer.Option(help="The training data (default: the folder the run was trained on).")
    ] = None,
) -> None:
    """RUN/model.onnx for `predict --engine onnx` (and RUN/model.int8.onnx for `--engine int8`)."""
    if format != "onnx":
        raise typer.BadParameter(f"unknown format {format!r}; onnx is the one radlab writes")
    task = run_task(run_dir)
    try:
        module = task_module(task, "export")
    except ModuleNotFoundError:
        raise RadlabError(f"export is not available for {task}") from None
    module.export(run_dir, int8=int8, calibration=calibration, data_root=data_root)


def _bench_function(task: str, kind: str):
    if task not in task_names():
        raise typer.BadParameter(f"unknown task {task!r}; choose from {', '.join(task_names())}")
    try:
        return getattr(task_module(task, "bench"), f"bench_{kind}")
    except (ModuleNotFoundError, AttributeError):
        raise RadlabError(f"no `bench {kind}` for {task}") from None


def _print_bench(result: dict, as_json: bool) -> None:
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
        int | None, typer.Option(help="Synthetic items to predict: images (MURA), exams (MRNet).")
    ] = None,
    repeats: Annotated[int, typer.Option(help="Interleaved timed repeats (median ratio).")] = 3,
    config: Annotated[str, typer.Option(help="Preset or YAML for the model (when no --model).")] = "paper",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Config overrides, a.b=c.")] = None,
    model: Annotated[Path | None, typer.Option(help="Measure this trained run instead of a fresh model.")] = None,
    engine: Annotated[
        list[str] | None, typer.Option(help="torch, onnx, int8 (repeatable; default: every engine the task has).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Loader processes on radlab's side.")] = None,
) -> None:
    """Prediction: the reference loop against what `radlab TASK predict` runs, on the same synthetic inputs."""
    from radlab.core.infer import ENGINES

    unknown = sorted(set(engine or ()) - set(ENGINES))
    if unknown:
        raise RadlabError(f"unknown engine {unknown[0]!r}; choose from {', '.join(ENGINES)}")
    options = {"images": images, "engines": tuple(engine) if engine else None}
    result = _bench_function(task, "infer")(
        repeats=repeats,
        config_name=config,
        overrides=set_ or [],
        model_dir=model,
        workers=workers,
        **{key: value for key, value in options.items() if value is not None},
    )
    _print_bench(result, as_json)


@bench_app.command("prep")
def bench_prep(
    task: Annotated[str, typer.Option(help="The task to measure.")] = "mura",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    images: Annotated[int, typer.Option(help="Synthetic files to preprocess.")] = 200,
    repeats: Annotated[int, typer.Option(help="Interleaved timed repeats (median ratio).")] = 3,
    size: Annotated[int | None, typer.Option(help="Output size in px (default: the paper preset's).")] = None,
) -> None:
    """Decoding and preprocessing: the reference against radlab's path (cache, lookup-table windowing)."""
    kwargs = {"size": size} if size is not None else {}
    _print_bench(_bench_function(task, "prep")(images=images, repeats=repeats, **kwargs), as_json)


@app.command()
def inspect(
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

    if task not in task_names():
        raise typer.BadParameter(f"unknown task {task!r}; choose from {', '.join(task_names())}")
    explanations = task_module(task, "explain").explain(input_path, model)
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

    if task not in task_names():
        raise typer.BadParameter(f"unknown task {task!r}; choose from {', '.join(task_names())}")
    try:
        spec = task_module(task, "tune").tuning()
    except ModuleNotFoundError:
        raise RadlabError(f"tune is not available for {task}") from None
    folder = out or Path(f"tune-{task}")
    summary = run_tuning(
        spec, data_root, folder, trials, storage, study_name, config, set_ or [], timeout_s=timeout, seed=seed
    )
    line = (
        f"study {summary['study']}: {summary['trials']} trials ({summary['complete']} complete, "
        f"{summary['pruned']} pruned, {summary['failed']} failed, {summary['running']} running)"
    )
    if "best_trial" in summary:
        best = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary["best_params"].items()
        )
        line += f"; best trial {summary['best_trial']}: {spec.objective.name} {summary['best_value']:.4f} ({best})"
        line += f"; preset {folder / 'best.yaml'}"
    info(line)


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


def main() -> None:
    """Console entry point: runs the app, turning radlab's errors into one line and an exit code."""
    with warnings.catch_warnings():
        for pattern in _NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            app()
        except RadlabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
