"""What every task's `radlab export` shares: its networks written as ONNX (and int8) files beside their
weights, and the engines compared on validation data with the task's official metric.

A task names its *parts*: each network that takes pixels, the folder whose model.safetensors it came from,
and where its int8 calibration batches come from. Predict then finds model.onnx / model.int8.onnx in the
same folders (see engines.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from radlab.core.console import info
from radlab.core.infer.engines import ENGINES
from radlab.core.infer.onnx import OPSET, OUTPUT, export_onnx, quantize_int8
from radlab.core.infer.streaming import iterate_batches

Calibration = Callable[[int], Iterable[np.ndarray]]


@dataclass
class ExportPart:
    """One network of a run: pixels (float32 0..255, N x C x H x W) in, `outputs` out."""

    folder: Path
    module: nn.Module
    example: torch.Tensor
    calibration: Calibration | None = None
    outputs: tuple[str, ...] = (OUTPUT,)
    metadata: dict[str, str] = field(default_factory=dict)


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


def export_parts(root: Path, parts: Sequence[ExportPart], *, int8: bool, calibration: int) -> dict[str, Any]:
    """Write each part's model.onnx (and model.int8.onnx, calibrated on `calibration` training images);
    returns what RUN/export.json records: the opset and the files, relative to `root`."""
    files: list[str] = []
    for part in parts:
        fp32 = export_onnx(part.module, part.example, part.folder / ENGINES["onnx"], OPSET, part.outputs, part.metadata)
        files.append(fp32.relative_to(root).as_posix())
        info(f"wrote {fp32}")
        if int8:
            if part.calibration is None:
                raise ValueError(f"no calibration data for {part.folder}")
            quantized = quantize_int8(fp32, part.folder / ENGINES["int8"], part.calibration(calibration))
            files.append(quantized.relative_to(root).as_posix())
            info(f"wrote {quantized} (static int8, calibrated on {calibration} training images)")
    report: dict[str, Any] = {"opset": OPSET, "files": files}
    if int8:
        report["calibration_images"] = calibration
    return report


def exported_engines(report: dict[str, Any]) -> list[str]:
    """The engines an export report's files serve, torch first."""
    return ["torch", "onnx"] + (["int8"] if any(f.endswith(ENGINES["int8"]) for f in report["files"]) else [])


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
