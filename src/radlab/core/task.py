"""The Task interface: one object per challenge, registered once, that tells every generic command what it
needs (timm's `register_model` / `create_model` habit: one registry, one door).

A task is registered by the `radlab.tasks` entry-point group of any installed package (radlab's own four
are declared in its pyproject.toml), or in-process with `register`. Every capability that imports torch or
the task's model code is a `Lazy` reference, imported on first use, so that building the command line
imports no torch. An optional capability a task lacks is an explicit `None`.

A task package usually describes itself in a manifest, `task.yaml` (napari's plugin manifests are the model):
its texts, objective, flags and `module:attribute` references to its parts, validated like a config (unknown
keys are errors); `Task.from_manifest(__name__, Config, predict, evaluate, synth)` builds the Task from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypedDict, TypeVar

from pydantic import BaseModel, Field

from radlab.core.config import StrictModel, load_config, read_yaml, validate_config
from radlab.core.errors import RadlabConfigError, RadlabDataError

if TYPE_CHECKING:
    from radlab.core.bench.spec import BenchSpec
    from radlab.core.demo import DemoSpec
    from radlab.core.engine.driver import Training
    from radlab.core.engine.run_dir import RunDir
    from radlab.core.explain.explanation import Explanation
    from radlab.core.infer.export import ExportSpec
    from radlab.core.infer.shard import Shard
    from radlab.core.report.cases import CaseTable
    from radlab.core.report.document import Section
    from radlab.core.serve.spec import ServeSpec

    ReportSections = Callable[[RunDir, dict[str, Any], CaseTable | None], list[Section]]
    # (labels, truth (N, K), probs (N, K), the run's config.yaml as read) -> name: value; what `radlab
    # calibrate` reports before and after
    CaseMetric = Callable[[Sequence[str], Any, Any, dict[str, Any]], dict[str, float | None]]

T = TypeVar("T")
ENTRY_POINT_GROUP = "radlab.tasks"


class Lazy(Generic[T]):
    """A `module:attribute` reference imported on first `get()`. An import that fails is an error there and
    then (never taken to mean "this task has no such capability"). A module starting with "." is relative to
    `package`."""

    def __init__(self, target: str, package: str = "") -> None:
        module, sep, attribute = target.partition(":")
        if not sep or not module or not attribute:
            raise ValueError(f"a lazy reference is 'module:attribute', got {target!r}")
        self.module = f"{package}{module}" if module.startswith(".") else module
        self.attribute = attribute
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            self._value = getattr(importlib.import_module(self.module), self.attribute)
        return self._value

    def __repr__(self) -> str:
        return f"Lazy({self.module}:{self.attribute})"


@dataclass(frozen=True)
class Objective:
    """What a run of the task is judged by: `metric`, better in `direction`, read from its held-out scores
    (ensemble.json, tuning) under `key` (default: the metric's name), and `epoch_metric`, the per-epoch
    value the trainer logs (the tuning pruner watches it)."""

    metric: str
    direction: Literal["maximize", "minimize"]
    epoch_metric: str
    key: str | None = None

    def value(self, held_out: dict[str, float | None]) -> float | None:
        """The objective's value among a run's held-out scores."""
        return held_out.get(self.key or self.metric)


@dataclass(frozen=True)
class TrainOption:
    """A task's own `train` flag taking a comma-separated list that becomes `--set KEY=[...]` (MRNet's
    `--planes axial,coronal` sets `train.planes`)."""

    name: str
    key: str
    help: str


class EngineOptions(TypedDict, total=False):
    """The keyword arguments every task's predict function takes for the shared predict options (as
    `**options: Unpack[EngineOptions]`): items per pass, loading processes, failing on the first unreadable
    input, the device and the engine; and `shard`, the 1/N of the input's units to predict (None: all)."""

    batch_size: int | None
    num_workers: int | None
    strict: bool
    device: str
    engine: str
    shard: Shard | None


def engine_options(options: EngineOptions) -> tuple[int | None, int | None, bool, str, str]:
    """(batch_size, num_workers, strict, device, engine), the defaults filled in."""
    return (
        options.get("batch_size"),
        options.get("num_workers"),
        options.get("strict", False),
        options.get("device", "auto"),
        options.get("engine", "torch"),
    )


@dataclass(frozen=True)
class PredictOptions:
    """The options every `radlab TASK predict` shares (declared once, in the command line): the runs whose
    models predict (several are averaged; a `--folds` ensemble counts as its folds), batch size, loader
    processes, failing on the first unreadable input, the device, the engine, and whether weights changed
    since training (their sha256 no longer the one RUN/environment.json records) are warned about rather
    than refused."""

    models: Sequence[Path]
    batch_size: int | None = None
    workers: int | None = None
    strict: bool = False
    device: str = "auto"
    engine: str = "torch"
    allow_changed_weights: bool = False
    shard: Shard | None = None  # --shard I/N: predict the input's units of that shard only

    def engine_kwargs(self) -> EngineOptions:
        """The keyword arguments every task's predict function takes for these options."""
        return {
            "batch_size": self.batch_size,
            "num_workers": self.workers,
            "strict": self.strict,
            "device": self.device,
            "engine": self.engine,
            "shard": self.shard,
        }


@dataclass(frozen=True)
class SizeOption:
    """One size flag of `radlab synth TASK` (an integer)."""

    default: int
    minimum: int
    help: str


@dataclass(frozen=True)
class Synth:
    """`radlab synth TASK OUT [--seed S] [--SIZE N ...]`: `run(out, seed=..., **sizes)` writes the data set in
    the challenge's layout and returns counts per split (printed)."""

    run: Lazy[Callable[..., dict[str, Any]]]
    help: str
    sizes: dict[str, SizeOption]


@dataclass(frozen=True)
class Codalab:
    """A task's CodaLab-style bundle: the run files it carries (glob patterns) and its predict entry,
    `predict(input, output, model_dir) -> summary line`, run as `python src/predict.py INPUT OUTPUT`."""

    files: tuple[str, ...]
    usage: str
    predict: Lazy[Callable[[str, str, Path], str]]


@dataclass(frozen=True)
class Task:
    """Everything the generic commands need of one challenge.

    `predict` is the task's command function minus the shared options (it takes a `PredictOptions` named
    `options` and returns the line to print); `evaluate` is a plain command function.
    `data_help` describes the `--data-root` that `train` takes, `train_help` what `train` does;
    `predict_outputs` names predict's options that are files it writes besides OUTPUT (checked as OUTPUT is);
    `position` orders the listing (radlab's own four are 0 to 3; others follow, by name). `stages` name a
    multi-stage recipe's stages in order (`--stage`), `stage_sections` the config sections each one owns.
    """

    name: str
    help: str
    data_help: str
    train_help: str
    config: type[BaseModel]
    objective: Objective
    training: Lazy[Training]
    load: Lazy[Callable[..., Any]]
    predict: Callable[..., str]
    evaluate: Callable[..., None]
    synth: Synth
    package: str
    train_options: tuple[TrainOption, ...] = ()
    predict_outputs: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    stage_sections: dict[str, tuple[str, ...]] = field(default_factory=dict)
    report: Lazy[ReportSections] | None = None
    explain: Lazy[Callable[[Path, Path], list[Explanation]]] | None = None
    export: Lazy[ExportSpec] | None = None
    bench: Lazy[BenchSpec] | None = None
    codalab: Codalab | None = None
    demo: Lazy[DemoSpec] | None = None
    serve: Lazy[ServeSpec] | None = None
    case_metric: Lazy[CaseMetric] | None = None  # the official metric from a validation case table
    merge: Lazy[Callable[[Path, Path, Sequence[Path]], str]] | None = None  # `radlab TASK merge`
    default_preset: str = "paper"
    position: int = 100

    @property
    def presets(self) -> Traversable:
        """The task's presets folder (`<package>/presets/*.yaml`)."""
        return files(self.package) / "presets"

    def load_config(self, name_or_path: str | None = None, overrides: Sequence[str] = ()) -> Any:
        """A preset (or a YAML file based on one) with `--set` overrides, validated."""
        return load_config(self.config, self.presets, name_or_path, overrides, default=self.default_preset)

    @classmethod
    def from_manifest(
        cls,
        package: str,
        config: type[BaseModel],
        predict: Callable[..., str],
        evaluate: Callable[..., None],
    ) -> Task:
        """The task a package's `task.yaml` describes, with its config schema and command functions."""
        path = files(package) / "task.yaml"
        manifest = validate_config(Manifest, read_yaml(path, "task manifest"), source=str(path))

        def ref(target: str | None) -> Lazy[Any] | None:
            return Lazy(target, package) if target else None

        codalab = manifest.codalab
        return cls(
            name=manifest.name,
            help=manifest.help,
            data_help=manifest.data_help,
            train_help=manifest.train_help.strip(),
            config=config,
            objective=Objective(**manifest.objective.model_dump()),
            training=Lazy(manifest.training, package),
            load=Lazy(manifest.load, package),
            predict=predict,
            evaluate=evaluate,
            synth=Synth(
                Lazy(manifest.synth.run, package),
                manifest.synth.help,
                {name: SizeOption(o.default, o.min, o.help) for name, o in manifest.synth.sizes.items()},
            ),
            package=package,
            train_options=tuple(TrainOption(**option.model_dump()) for option in manifest.train_options),
            predict_outputs=tuple(manifest.predict_outputs),
            stages=tuple(entry.name for entry in manifest.stages),
            stage_sections={entry.name: tuple(entry.sections) for entry in manifest.stages},
            report=ref(manifest.report),
            explain=ref(manifest.explain),
            export=ref(manifest.export),
            bench=ref(manifest.bench),
            codalab=Codalab(tuple(codalab.files), codalab.usage, Lazy(codalab.predict, package)) if codalab else None,
            demo=ref(manifest.demo),
            serve=ref(manifest.serve),
            case_metric=ref(manifest.case_metric),
            merge=ref(manifest.merge),
            default_preset=manifest.default_preset,
            position=manifest.position,
        )

    def run_config(self, run_dir: str | Path) -> Any:
        """The resolved config a run was trained with (its config.yaml), validated."""
        path = Path(run_dir) / "config.yaml"
        if not path.is_file():
            raise RadlabDataError(path, "missing: not a finished radlab run directory (train first)")
        return validate_config(self.config, read_yaml(path, "run config"), source=str(path))


class _ObjectiveEntry(StrictModel):
    metric: str
    direction: Literal["maximize", "minimize"]
    epoch_metric: str
    key: str | None = None


class _TrainOptionEntry(StrictModel):
    name: str
    key: str
    help: str


class _StageEntry(StrictModel):
    name: str
    sections: list[str]


class _SizeEntry(StrictModel):
    default: int
    min: int = 1
    help: str


class _SynthEntry(StrictModel):
    run: str
    help: str
    sizes: dict[str, _SizeEntry] = Field(default_factory=dict)


class _CodalabEntry(StrictModel):
    files: list[str] = Field(min_length=1)
    usage: str
    predict: str


class Manifest(StrictModel):
    """What a task's `task.yaml` holds; references are `module:attribute`, relative (".recipe:TRAINING") to
    the task's package; an absent optional capability is null."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    help: str
    data_help: str
    train_help: str
    objective: _ObjectiveEntry
    synth: _SynthEntry
    training: str
    load: str
    train_options: list[_TrainOptionEntry] = Field(default_factory=list)
    predict_outputs: list[str] = Field(default_factory=list)
    stages: list[_StageEntry] = Field(default_factory=list)
    report: str | None = None
    explain: str | None = None
    export: str | None = None
    bench: str | None = None
    demo: str | None = None
    serve: str | None = None
    case_metric: str | None = None
    merge: str | None = None
    codalab: _CodalabEntry | None = None
    default_preset: str = "paper"
    position: int = 100


_REGISTRY: dict[str, Task] = {}
_DISCOVERED: list[bool] = []


def register(task: Task) -> Task:
    """Add a task to the registry (what an entry point's object is given to); returns it, so that it can be
    used as `TASK = register(Task(...))`. A second task under a taken name is refused."""
    known = _REGISTRY.get(task.name)
    if known is not None and known is not task:
        raise RadlabConfigError(
            f"two tasks are named {task.name!r} ({known.config.__module__}, {task.config.__module__})"
        )
    _REGISTRY[task.name] = task
    return task


def _discover() -> None:
    """Load every `radlab.tasks` entry point once. A package whose task cannot be imported costs a warning
    naming it (the rest of the command line keeps working)."""
    if _DISCOVERED:
        return
    _DISCOVERED.append(True)
    from importlib.metadata import entry_points

    seen: set[str] = set()
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in seen:  # the same distribution found twice on sys.path
            continue
        seen.add(point.name)
        try:
            task = point.load()
        except Exception as exc:  # a broken third-party package must not take the whole command line down
            from radlab.core.console import warn

            warn(f"task {point.name!r} ({point.value}) could not be loaded: {type(exc).__name__}: {exc}")
            continue
        if not isinstance(task, Task):
            raise RadlabConfigError(f"entry point {point.name!r} ({point.value}) is not a radlab Task")
        register(task)


def tasks() -> list[Task]:
    """Every registered task, in `position` order (radlab's own first), then by name."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda task: (task.position, task.name))


def task_names() -> list[str]:
    return [task.name for task in tasks()]


def get_task(name: str) -> Task:
    """The task called `name`; a usage error listing the known ones otherwise."""
    _discover()
    if name not in _REGISTRY:
        raise RadlabConfigError(f"unknown task {name!r}; choose from {', '.join(task_names())}")
    return _REGISTRY[name]


def task_of_run(run_dir: str | Path) -> Task:
    """The task a run directory belongs to, from its config.yaml."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file() and (run_dir / "ensemble.json").is_file():
        raise RadlabDataError(
            run_dir, "is a --folds ensemble (or of train.members); give one of its runs (e.g. fold0/) to this command"
        )
    if not config_path.is_file():
        raise RadlabDataError(config_path, "missing: not a radlab run directory (train first)")
    name = read_yaml(config_path, "run config").get("task")
    _discover()
    if name not in _REGISTRY:
        raise RadlabDataError(config_path, f"names no known task ({name!r})")
    return _REGISTRY[name]
