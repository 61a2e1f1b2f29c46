"""The commands generated for every registered task, with the options they share declared once:
`radlab TASK train` (the training driver's flags, the task's own, the scaling flags), `radlab TASK predict`
(the task's inputs and options plus `--model`, `--batch-size`, `--workers`, `--strict`, `--device`,
`--engine`, `--allow-changed-weights`, `--shard`), `radlab TASK merge` (the shards' outputs as one),
`radlab synth TASK` (OUT and `--seed` plus the task's sizes) and `radlab codalab TASK`. Typer reads a
generated command's `__signature__`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from radlab.core.config import preset_names, with_trust_pickle
from radlab.core.console import info
from radlab.core.errors import RadlabError
from radlab.core.io.outputs import check_outputs
from radlab.core.task import PredictOptions, Task

SCALING = "Scaling out"


def _option(annotation: Any, *names: str, default: Any = inspect.Parameter.empty, **kwargs: Any) -> inspect.Parameter:
    """A keyword parameter of a generated command: `--name` (from the first name) with typer's metadata."""
    name = names[0].lstrip("-").replace("-", "_")
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, typer.Option(*names, **kwargs)],
    )


def _command(name: str, doc: str, parameters: list[inspect.Parameter], run: Callable[[dict[str, Any]], Any]) -> Any:
    """A command function whose signature is `parameters` (Typer reads `__signature__`)."""

    def command(**values: Any) -> Any:
        return run(values)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]  # read by inspect.signature
    command.__doc__, command.__name__ = doc, name
    return command


def _train_parameters(task: Task) -> list[inspect.Parameter]:
    presets = ", ".join(preset_names(task.presets))
    parameters = [
        _option(Path, "--data-root", help=task.data_help),
        _option(Path, "--out", help="Run directory to create (or resume)."),
        _option(str | None, "--config", default=None, help=f"Preset name ({presets}) or a YAML file."),
        _option(list[str] | None, "--set", default=None, help="Override a config key: a.b=value (repeatable)."),
        _option(bool, "--resume", default=False, help="Continue the run in --out from its last checkpoint."),
        _option(
            bool,
            "--trust-pickle",
            default=False,
            help="Let model.weights_file be a pickle (.pt/.pth): files you trust only.",
        ),
    ]
    parameters += [_option(str | None, f"--{o.name}", default=None, help=o.help) for o in task.train_options]
    parameters.append(
        _option(
            str | None,
            "--logger",
            default=None,
            help="Track the training: csv, tensorboard (RUN/logs/) or mlflow (tracking.mlflow_uri, "
            "tracking.experiment); none by default.",
        )
    )
    if task.stages:
        stage = Literal[("all", *task.stages)]  # type: ignore[valid-type]  # built from the task's stages
        parameters.append(
            _option(stage, "--stage", default="all", help=f"all, or one stage alone: {', '.join(task.stages)}.")
        )
    parameters += [
        _option(
            str | None,
            "--devices",
            default=None,
            help="Devices per machine: N, -1 for all, or a list such as 0,1 (Lightning's `devices`).",
            rich_help_panel=SCALING,
        ),
        _option(
            str | None,
            "--strategy",
            default=None,
            help="auto, ddp, ddp_spawn, fsdp, ... (Lightning's names); ddp runs one process per device.",
            rich_help_panel=SCALING,
        ),
        _option(
            int | None,
            "--num-nodes",
            default=None,
            min=1,
            help="Machines in the job; start the same command on each (torchrun or srun).",
            rich_help_panel=SCALING,
        ),
        _option(str | None, "--accelerator", default=None, help="auto, cpu, gpu, cuda, mps.", rich_help_panel=SCALING),
        _option(
            int | None,
            "--folds",
            default=None,
            min=2,
            help="Train all K folds of a K-fold split: OUT/fold<i>/ each, plus OUT/ensemble.json for predict.",
            rich_help_panel=SCALING,
        ),
    ]
    return parameters


def train_command(task: Task) -> Any:
    """`radlab TASK train`: the shared training flags, the task's own, then the core training driver."""

    def run(values: dict[str, Any]) -> None:
        from radlab.core.engine.driver import train
        from radlab.core.engine.ensemble import ENSEMBLE_KIND, describe_ensemble
        from radlab.core.engine.scaling import scaling_overrides
        from radlab.core.engine.session import is_primary_process
        from radlab.core.engine.tracking import require_logger

        if values["logger"]:
            require_logger(values["logger"])  # before the run directory is made
        sets = with_trust_pickle(values["set"], values["trust_pickle"])
        sets += scaling_overrides(values["devices"], values["strategy"], values["num_nodes"], values["accelerator"])
        sets += [f"{o.key}=[{values[o.name]}]" for o in task.train_options if values[o.name]]
        sets += [f"tracking.logger={values['logger']}"] if values["logger"] else []
        stage = values.get("stage", "all")
        out = values["out"]
        metrics = train(
            task,
            values["data_root"],
            out,
            values["config"],
            sets,
            values["resume"],
            folds=values["folds"],
            stage=None if stage == "all" else stage,
        )
        if not is_primary_process():  # the other processes of a DDP run stay quiet
            return
        from rich.console import Console

        console = Console(stderr=True)
        if metrics.get("kind") == ENSEMBLE_KIND:  # --folds or train.members: the manifest
            console.print(describe_ensemble(metrics, out))
            return
        console.print(task.training.get().describe(metrics, out))
        if isinstance(metrics.get("ensemble"), dict):  # a run that kept epochs
            console.print(describe_ensemble(metrics["ensemble"], out))

    return _command("train", task.train_help, _train_parameters(task), run)


DataRootOption = Annotated[Path, typer.Option("--data-root", help="Folder the CSV paths are relative to.")]
AllowOutsideRootOption = Annotated[
    bool, typer.Option("--allow-outside-root", help="Accept absolute or `..` paths in the CSV.")
]
"""The options of a predict that reads paths from a CSV (MURA, MRNet): where they are relative to, and
whether they may leave it."""


def _probability(value: float | None) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:  # NaN fails this too
        raise typer.BadParameter(f"{value} is not between 0 and 1")
    return value


def threshold_option(help: str) -> Any:
    """`--threshold T` for a predict: None (the run's choice) or a finite T in [0, 1], else exit 2."""
    return typer.Option(callback=_probability, help=help)


PREDICT_OPTIONS = [
    _option(list[Path], "--model", help="Run directory or --folds ensemble; repeat to average several."),
    _option(int | None, "--batch-size", default=None, min=1, help="Items per forward pass (the run's setting)."),
    _option(int | None, "--workers", default=None, min=0, help="Loading and decoding processes (the run's setting)."),
    _option(bool, "--strict", default=False, help="Fail on the first unreadable input instead of warning."),
    _option(str, "--device", default="auto", help="auto, cpu, cuda, cuda:1, ..."),
    _option(
        str,
        "--engine",
        default="torch",
        help="torch, or exported files: onnx, int8, openvino, openvino-int8, openvino-nncf, onnx-cuda, onnx-tensorrt.",
    ),
    _option(
        bool,
        "--allow-changed-weights",
        default=False,
        help="Warn about, instead of refusing, weights whose sha256 is not the one RUN/environment.json records.",
    ),
    _option(
        str | None,
        "--shard",
        default=None,
        help="I/N: predict the input's units (studies, exams, images, series) of shard I (from 0) of N only; "
        "auto: torchrun's RANK/WORLD_SIZE, writing OUTPUT as NAME.shard-I-of-N.csv. `merge` joins them.",
        rich_help_panel=SCALING,
    ),
]


OUTPUT = Annotated[
    Path, typer.Argument(metavar="OUTPUT_CSV", help="The predictions to write, in the challenge's official format.")
]


def predict_command(task: Task) -> Any:
    """`radlab TASK predict INPUT OUTPUT_CSV`: the task's input and own options, OUTPUT_CSV (the task's
    parameter named `output`) and the shared options declared above."""
    own = [
        p.replace(annotation=OUTPUT) if name == "output" else p
        for name, p in inspect.signature(task.predict, eval_str=True).parameters.items()
        if name != "options"
    ]
    shared = {p.name for p in PREDICT_OPTIONS}

    first = own[0].name  # the task's INPUT

    def run(values: dict[str, Any]) -> str:
        common = {name: values.pop(name) for name in shared}
        if common["shard"] is not None:
            from radlab.core.infer.shard import AUTO, for_process, parse_shard

            auto, common["shard"] = common["shard"] == AUTO, parse_shard(common["shard"])
            written = {name: values[name] for name in ("output", *task.predict_outputs) if values.get(name)}
            renamed, common["device"] = for_process(common["shard"], written, common["device"], auto)
            values.update(renamed)
        options = PredictOptions(models=common.pop("model"), **common)
        outputs = [values["output"], *(values[name] for name in task.predict_outputs if values.get(name))]
        check_outputs(outputs, inputs=[values[first]], models=options.models)
        from radlab.core.provenance.record import changed_weights_allowed

        with changed_weights_allowed(options.allow_changed_weights):
            line = task.predict(**values, options=options)
        info(line)
        return line

    return _command("predict", task.predict.__doc__ or "", [*own, *PREDICT_OPTIONS], run)


def merge_command(task: Task) -> Any:
    """`radlab TASK merge INPUT OUTPUT SHARD...`: the shard outputs of `predict --shard` as one file, the one
    the unsharded predict of INPUT would have written, byte for byte."""

    def merge(
        input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="The input every shard predicted from.")],
        output: Annotated[Path, typer.Argument(metavar="OUTPUT", help="The merged file to write (atomically).")],
        shards: Annotated[
            list[Path], typer.Argument(metavar="SHARD...", help="Shard outputs: shard 0 first, or *.shard-I-of-N.*")
        ],
    ) -> str:
        assert task.merge is not None  # registered only for tasks that have it
        check_outputs([output], inputs=[input_path, *shards])
        line = task.merge.get()(input_path, output, shards)
        info(line)
        return line

    merge.__doc__ = (
        "Join the outputs of `predict --shard I/N` (every I of one N) into the file the unsharded predict would "
        "have written; a unit missing or doubled is an error naming the shard file."
    )
    return merge


def synth_command(task: Task) -> Any:
    """`radlab synth TASK OUT [--SIZE N ...] [--seed S]`: the task's data set in its official layout."""
    spec = task.synth
    parameters = [
        inspect.Parameter(
            "out",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[Path, typer.Argument(help="Folder to write the data set into (official layout).")],
        ),
        *(
            _option(int, f"--{name.replace('_', '-')}", default=o.default, min=o.minimum, help=o.help)
            for name, o in spec.sizes.items()
        ),
        _option(int, "--seed", default=0, help="Same seed, same bytes."),
        _option(bool, "--force", default=False, help="Write into OUT even when it already holds files."),
    ]

    def run(values: dict[str, Any]) -> str:
        out, force = values.pop("out"), values.pop("force")
        if out.exists() and not out.is_dir():
            raise RadlabError(f"{out}: not a folder")
        if not force and out.is_dir() and any(out.iterdir()):
            raise RadlabError(
                f"{out} already holds files (a data set?); pick an empty folder, or --force to write over it"
            )
        counts = spec.run.get()(out, **values)
        line = f"wrote {out}: " + "; ".join(f"{split} {_count(value)}" for split, value in counts.items())
        info(line)
        return line

    return _command("synth", spec.help, parameters, run)


def _count(value: Any) -> str:
    """`480` as it is, `{"studies": 32, "images": 93}` as "32 studies, 93 images"."""
    return ", ".join(f"{v} {k}" for k, v in value.items()) if isinstance(value, dict) else str(value)


def codalab_command(task: Task) -> Any:
    def codalab(
        run_dir: Annotated[Path, typer.Argument(help="Run directory of a trained model (or a --folds ensemble).")],
        out_dir: Annotated[Path, typer.Argument(help="Bundle folder to create (holds src/).")],
    ) -> None:
        from radlab.core.infer.bundle import build_bundle

        entry = build_bundle(task, run_dir, out_dir)
        info(f"wrote {entry}; run it as: python {entry.relative_to(out_dir)} {usage}")

    usage = task.codalab.usage if task.codalab is not None else "INPUT OUTPUT"
    codalab.__doc__ = f"A self-contained bundle: `python src/predict.py {usage}`."
    return codalab
