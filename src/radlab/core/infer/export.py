"""`radlab export` for every task: its networks written as ONNX (and int8) files beside their weights, and
the engines compared on held-out data with the task's official metric, kept in RUN/export.json.

A task's `ExportSpec` names its *parts* (each network that takes pixels, the folder whose model.safetensors
it came from, where its int8 calibration batches come from) and its held-out check (what to predict, how
to score it). Predict then finds model.onnx / model.int8.onnx in the same folders (see engines.py); every
installed engine that runs them (ONNX Runtime's, OpenVINO's) is checked.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from radlab.core.console import info, warn
from radlab.core.engine.ensemble import ENSEMBLE_FILE, read_manifest
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabConfigError, RadlabError
from radlab.core.infer.engines import INT8_FILE, NNCF_FILE, ONNX_FILE, installed_engines, weights_stamp
from radlab.core.infer.nncf import nncf_installed, quantize_nncf, remove_ir
from radlab.core.infer.onnx import INT8_METHODS, KEEP_FLOAT, OPSET, OUTPUT, export_onnx, quantize_int8
from radlab.core.infer.streaming import iterate_batches

if TYPE_CHECKING:
    from radlab.core.task import Task

Calibration = Callable[[int], Iterable[np.ndarray]]


class Predictor(Protocol):
    """(engine, the `--model` runs: the checked run when None, the device: the CPU, where engines are
    compared) -> (the official score of its held-out predictions, the values to compare across engines or
    members)."""

    def __call__(
        self, engine: str, models: Sequence[Path] | None = None, device: str = "cpu"
    ) -> tuple[float | None, np.ndarray]: ...


@dataclass
class ExportPart:
    """One network of a run: pixels (float32 0..255, N x C x H x W) in, `outputs` out."""

    folder: Path
    module: nn.Module
    example: torch.Tensor
    calibration: Calibration | None = None
    outputs: tuple[str, ...] = (OUTPUT,)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HeldOut:
    """A run's held-out check: `predict(engine)` (see Predictor), and what the report records beside."""

    predict: Predictor
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportSpec:
    """What a task's export writes and checks.

    `parts(run, loaded, data_root, held_out_apart)`: the networks of a loaded run, each written beside its
    weights, calibrated on `data_root` (None without the training data; the run's held-out items left out of
    calibration when `held_out_apart`).
    `held_out(run, data_root, scratch)`: the check, on the run's held-out data, with files in `scratch`;
    `metric` names the official score it reports."""

    parts: Callable[[RunDir, Any, Path | None, bool], Sequence[ExportPart]]
    held_out: Callable[[RunDir, Path, Path], HeldOut]
    metric: str


def export_run(
    task: Task,
    run_dir: str | Path,
    *,
    int8: bool = False,
    calibration: int = 64,
    data_root: str | Path | None = None,
    validate: bool = True,
    int8_method: str = "minmax",
    keep_float: str = "none",
) -> dict[str, Any]:
    """Write a run's ONNX file(s) and RUN/export.json, which the report returns; `validate` also predicts
    the run's held-out data with every engine when the training data is known (--int8 or --data-root).
    `int8_method` and `keep_float` are the int8 recipe (onnx.INT8_METHODS, onnx.KEEP_FLOAT)."""
    if task.export is None:
        raise RadlabError(f"export is not available for {task.name}")
    recipe = Int8Recipe(calibration, int8_method, keep_float)  # checked with or without --int8
    if not int8 and (int8_method, keep_float) != (Int8Recipe.method, Int8Recipe.keep_float):
        raise RadlabConfigError("--int8-method and --int8-keep-float choose the int8 recipe: add --int8")
    spec = task.export.get()
    run = RunDir(Path(run_dir))
    if (run.root / ENSEMBLE_FILE).is_file():
        members = ", ".join(str(run.root / m) for m in read_manifest(run.root)["members"])
        raise RadlabError(f"{run.root} is an ensemble; export each of its members instead ({members})")
    loaded = task.load.get()(run.root)
    known = int8 or data_root is not None
    root = task.training.get().data_root(run.data_root(data_root)) if known else None
    parts = spec.parts(run, loaded, root, validate)
    report = export_parts(run.root, parts, int8=recipe if int8 else None)
    if root is not None and validate:
        with tempfile.TemporaryDirectory(prefix="radlab-export-") as scratch:
            check = spec.held_out(run, root, Path(scratch))
            report.update(check.details)
            report["validation"] = compare_engines(exported_engines(report), check.predict, spec.metric)
    run.write_json("export.json", report)
    return report


def readable_batches(dataset: Dataset, batch_size: int = 8, collate_fn: Callable | None = None) -> Iterator[np.ndarray]:
    """Calibration batches from a radlab dataset (items with "image" and "error"): float32 pixels of the
    readable items only, decoded in this process."""
    batches = iterate_batches(
        dataset, batch_size=batch_size, num_workers=0, collate_fn=collate_fn, description="calibrating"
    )
    for item in batches:
        readable = [k for k, error in enumerate(item["error"]) if not error]
        if readable:
            yield item["image"][readable].float().numpy()


@dataclass(frozen=True)
class Int8Recipe:
    """How model.int8.onnx is made: training images calibrating it, the calibration method, the layers kept
    float (see onnx.quantize_int8)."""

    calibration: int = 64
    method: str = "minmax"
    keep_float: str = "none"

    def __post_init__(self) -> None:
        if self.method not in INT8_METHODS:
            raise RadlabConfigError(f"--int8-method {self.method!r}: choose from {', '.join(INT8_METHODS)}")
        if self.keep_float not in KEEP_FLOAT:
            raise RadlabConfigError(f"--int8-keep-float {self.keep_float!r}: choose from {', '.join(KEEP_FLOAT)}")


def export_parts(root: Path, parts: Sequence[ExportPart], *, int8: Int8Recipe | None = None) -> dict[str, Any]:
    """Write each part's model.onnx (and, with an int8 recipe, model.int8.onnx); returns what RUN/export.json
    records: the opset, the files relative to `root`, and the int8 recipe."""
    files: list[str] = []
    for part in parts:
        metadata = {**part.metadata, **weights_stamp(part.folder)}
        fp32 = export_onnx(part.module, part.example, part.folder / ONNX_FILE, OPSET, part.outputs, metadata)
        files.append(fp32.relative_to(root).as_posix())
        info(f"wrote {fp32}")
        if int8 is not None:
            if part.calibration is None:
                raise ValueError(f"no calibration data for {part.folder}")
            batches = list(part.calibration(int8.calibration))
            quantized = quantize_int8(fp32, part.folder / INT8_FILE, batches, int8.method, int8.keep_float)
            files.append(quantized.relative_to(root).as_posix())
            kept = "" if int8.keep_float == "none" else ", first and last layers float"
            what = f"static int8, {int8.method} ranges on {int8.calibration} training images{kept}"
            info(f"wrote {quantized} ({what})")
            remove_ir(part.folder / NNCF_FILE)  # an earlier export's IR is from another recipe: never left behind
            if nncf_installed():
                ir = _nncf_file(fp32, part.folder / NNCF_FILE, batches, metadata)
                files += [ir.relative_to(root).as_posix()] if ir is not None else []
    report: dict[str, Any] = {"opset": OPSET, "files": files}
    if int8 is not None:
        report["calibration_images"] = int8.calibration
        report["int8"] = {"method": int8.method, "keep_float": int8.keep_float}
    return report


def _nncf_file(fp32: Path, target: Path, batches: list[np.ndarray], metadata: dict[str, str]) -> Path | None:
    """NNCF's int8 IR beside the ONNX files, or a warning naming the network when NNCF cannot quantise it
    (the other engines' files stand: the export goes on)."""
    try:
        ir = quantize_nncf(fp32, target, batches, metadata)
    except Exception as exc:  # NNCF raises many types for graphs it does not support
        reason = (str(exc).splitlines() or [""])[0]  # its first line: the warning stays one line
        warn(f"{fp32}: NNCF could not quantise it ({type(exc).__name__}: {reason}); no {target.name}")
        return None
    info(f"wrote {ir} (NNCF int8 for OpenVINO, on the same images)")
    return ir


def exported_engines(report: dict[str, Any]) -> list[str]:
    """The engines an export report's files serve whose runtime is installed, torch first (OpenVINO's
    engines run the same files as ONNX Runtime's)."""
    files = (ONNX_FILE, *(f for f in (INT8_FILE, NNCF_FILE) if any(p.endswith(f) for p in report["files"])))
    return installed_engines(files)


def compare_engines(
    engines: Sequence[str],
    predict: Callable[[str], tuple[float | None, np.ndarray]],
    metric: str,
) -> dict[str, dict[str, Any]]:
    """{engine: {metric, and against the first engine: metric_change, max_abs_prob_diff}}.

    `predict(engine)` returns the official score of that engine's predictions and the probabilities to
    compare (any shape, the same for every engine)."""
    results: dict[str, dict[str, Any]] = {}
    reference: tuple[float | None, np.ndarray] | None = None
    for engine in engines:
        score, values = predict(engine)
        entry: dict[str, Any] = {metric: score}
        if reference is None:
            reference = score, np.asarray(values, dtype=np.float64)
        else:
            entry["max_abs_prob_diff"] = float(np.nan_to_num(np.abs(values - reference[1])).max(initial=0.0))
            entry[f"{metric}_change"] = None if score is None or reference[0] is None else score - reference[0]
        results[engine] = entry
        diff = entry.get("max_abs_prob_diff")
        change = "" if diff is None else f", max |dp| {diff:.2g} against torch"
        info(f"  {engine}: validation {metric} {_rounded(score)}{change}")
    return results


def _rounded(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.4f}"
