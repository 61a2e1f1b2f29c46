"""`radlab bench infer|prep --task T` for every task: the seeds' reference loop against what
`radlab T predict` runs, on the same synthetic inputs, interleaved in one run (see harness.py).

A task's `BenchSpec` subclass gives the inputs, a seeded fresh model (when no trained run is given), the
reference loop, radlab's side (its predict function with the model loaded beforehand, as the reference's
is), how the two outputs agree and the FLOPs per item; the driver does the rest for each engine, including
the fraction of radlab's wall time spent outside the network (harness.ForwardTimer). The exported engines
(ONNX Runtime's, OpenVINO's) are exported into a scratch copy of the run: a benchmark never writes into a
user's run.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from radlab.core.bench.harness import ForwardTimer, compare_interleaved
from radlab.core.bench.report import comparison_fields, infer_report, scratch_copy
from radlab.core.config import config_to_yaml
from radlab.core.console import info
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabConfigError, RadlabError
from radlab.core.io.atomic import atomic_write_text

if TYPE_CHECKING:
    from radlab.core.task import Task


@dataclass(frozen=True)
class BenchInputs:
    """Synthetic inputs: the data folder (export calibrates on it), how many items are timed, the task's own
    description of them (paths, a CSV, a folder), and the device both sides run PyTorch on (the driver sets
    it: "cpu" or "cuda")."""

    data_root: Path
    items: int
    payload: Any
    device: str = "cpu"


@dataclass(frozen=True)
class TrainPlan:
    """How a task's training is measured: `synth(items)` gives its demo synth's keywords for a data set of at
    least `items` training items; `overrides` shrink the run but not the network (one of MRNet's nine
    networks, no ensemble); `cpu_overrides` apply on a CPU only (a batch the CPU's memory holds); `stage`
    is the training stage measured; `epoch_items` is the real training set's size and `item` what one is,
    for the estimate of a full epoch."""

    synth: Callable[[int], dict[str, Any]]
    epoch_items: int
    item: str
    overrides: tuple[str, ...] = ()
    cpu_overrides: tuple[str, ...] = ()
    stage: str | None = None


class BenchSpec(ABC):
    """How a task is measured: subclass it, set `unit` (what an item is: image, exam, slice), `default_items`
    and `calibration` (int8 calibration items), implement the methods, set `prep` to the task's
    `bench prep` function if it has one and `train` to its TrainPlan for `bench train`. `loaded` is what the
    task's `load` returns for a run."""

    unit: ClassVar[str]
    default_items: ClassVar[int]
    calibration: ClassVar[int] = 32
    prep: ClassVar[Callable[..., dict[str, Any]] | None] = None
    train: ClassVar[TrainPlan | None] = None

    @abstractmethod
    def inputs(self, folder: Path, items: int, seed: int) -> BenchInputs:
        """Write synthetic inputs under `folder` holding at least `items` items."""

    @abstractmethod
    def fresh_run(self, run: RunDir, config: Any, seed: int) -> None:
        """Write a seeded fresh model's weights (and the files predict needs) into `run` (config.yaml is there)."""

    @abstractmethod
    def reference(self, loaded: Any, inputs: BenchInputs) -> Any:
        """The seeds' way: their prediction loop over the inputs."""

    @abstractmethod
    def radlab(self, loaded: Any, inputs: BenchInputs, scratch: Path, workers: int) -> Any:
        """radlab's way: the task's predict function on the inputs, the model loaded beforehand."""

    @abstractmethod
    def agreement(self, reference: Any, radlab: Any, config: Any) -> dict[str, Any]:
        """How the two outputs agree: at least `max_abs_prob_diff` and `label_agreement`."""

    @abstractmethod
    def flops(self, loaded: Any, inputs: BenchInputs) -> float:
        """FLOPs of the network per item."""

    @abstractmethod
    def details(self, config: Any, inputs: BenchInputs) -> dict[str, Any]:
        """What the report says of the inputs and the model."""


def _spec(task: Task, kind: str) -> BenchSpec:
    spec = task.bench.get() if task.bench is not None else None
    if spec is None or (kind == "prep" and spec.prep is None):
        raise RadlabError(f"no `bench {kind}` for {task.name}")
    return spec


def bench_infer(
    task: Task,
    *,
    items: int | None = None,
    repeats: int = 3,
    config_name: str | None = "paper",
    overrides: list[str] | tuple[str, ...] = (),
    model_dir: Path | None = None,
    engines: tuple[str, ...] | None = None,
    workers: int | None = None,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, Any]:
    """Items per second, agreement, time outside the network and memory of each radlab engine against the
    reference (by default every engine the task exports whose runtime is installed). `device` ("cpu",
    "cuda", "auto") is where both sides run PyTorch; the exported engines run where their runtime does (the
    CPU, or the GPU for onnx-cuda and onnx-tensorrt)."""
    from radlab.core.infer.engines import ENGINES, INT8_FILE, NNCF_FILE, installed_engines

    spec = _spec(task, "infer")
    engines = engines or (tuple(installed_engines()) if task.export is not None else ("torch",))
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        raise RadlabError(f"unknown engine {unknown[0]!r}; choose from {', '.join(ENGINES)}")
    device = bench_device(device)
    config = task.run_config(model_dir) if model_dir else task.load_config(config_name, list(overrides))
    workers = config.predict.num_workers if workers is None else workers
    load = task.load.get()
    with tempfile.TemporaryDirectory(prefix="radlab-bench-") as scratch_name:
        scratch = Path(scratch_name)
        inputs = replace(spec.inputs(scratch / "data", items or spec.default_items, seed), device=device)
        run = scratch_copy(model_dir, scratch) if model_dir else fresh_bench_run(spec, scratch / "run", config, seed)
        if any(ENGINES[e] for e in engines):
            from radlab.core.infer.export import export_run

            export_run(
                task,
                run,
                int8=any(ENGINES[e] in (INT8_FILE, NNCF_FILE) for e in engines),
                calibration=spec.calibration,
                data_root=inputs.data_root,
                validate=False,
            )
        reference_model = load(run)
        flops = spec.flops(reference_model, inputs)  # on the CPU, before the reference moves it to `device`
        results: dict[str, Any] = {}
        for engine in engines:
            what = f"{inputs.items} {spec.unit}s, {repeats} repeats"
            info(f"bench infer {task.name}: reference against radlab {engine}, {what}")
            loaded = load(run, engine)
            timer = ForwardTimer(loaded)
            comparison = compare_interleaved(
                partial(spec.reference, reference_model, inputs),
                timer.wrap(partial(spec.radlab, loaded, inputs, scratch, workers)),
                items=inputs.items,
                repeats=repeats,
            )
            timer.close()
            agreement = spec.agreement(comparison.reference_output, comparison.radlab_output, config)
            outside = timer.outside_fraction(skip=1)  # the first call is the warm-up
            results[engine] = comparison_fields(comparison, **agreement, outside_network_fraction=outside)
        details = spec.details(config, inputs)
    return infer_report(
        task.name, results, spec.unit, flops, device=device, repeats=repeats, loader_workers=workers, **details
    )


def bench_device(device: str) -> str:
    """ "cpu" or "cuda" for a `--device` of cpu, cuda or auto (cuda when PyTorch sees one); one line otherwise."""
    import torch

    if device not in ("cpu", "cuda", "auto"):
        raise RadlabConfigError(f"--device {device!r}: choose cpu, cuda or auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RadlabError("--device cuda: PyTorch sees no CUDA device on this machine")
    return device


def fresh_bench_run(spec: BenchSpec, folder: Path, config: Any, seed: int) -> Path:
    """A run directory holding `config` and a seeded fresh model (the task writes its weights and files)."""
    import torch

    run = RunDir(folder)
    run.root.mkdir(parents=True)
    atomic_write_text(run.config, config_to_yaml(config))
    torch.manual_seed(seed)
    spec.fresh_run(run, config, seed)
    return run.root


def bench_prep(task: Task, *, images: int = 200, repeats: int = 3, size: int | None = None) -> dict[str, Any]:
    """A training epoch's preprocessing, the reference against radlab's (see each task's `prep`)."""
    prep = _spec(task, "prep").prep
    assert prep is not None  # checked by _spec
    return prep(images=images, repeats=repeats, **({"size": size} if size is not None else {}))
