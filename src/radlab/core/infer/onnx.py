"""ONNX export and ONNX Runtime inference, fp32 and static int8 (OpenVINO runs the same files: openvino.py).

The exported graph takes what radlab's classifiers take, pixels 0..255 as float32 (N, C, H, W), with the
normalisation inside, so every engine sees the same input. Int8 models are quantised statically (QDQ,
per-channel weights) on calibration batches the caller draws from training images.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from radlab.core.errors import RadlabDataError
from radlab.core.io.atomic import atomic_path

OPSET = 17
INPUT, OUTPUT = "pixels", "logits"


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    opset: int = OPSET,
    outputs: tuple[str, ...] = (OUTPUT,),
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write `model` (eval mode, float32) as ONNX with a dynamic batch axis; atomic (no half-written file).

    `outputs` names the model's outputs (a tuple when several); `metadata` travels inside the file, for what
    a caller needs beside the tensors (a detector's feature-map sizes)."""
    path = Path(path)
    model = model.eval().float()
    with atomic_path(path, durable=False) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (example.float(),),
            str(tmp),
            input_names=[INPUT],
            output_names=list(outputs),
            dynamic_axes={name: {0: "batch"} for name in (INPUT, *outputs)},
            opset_version=opset,
            dynamo=False,
        )
        if metadata:
            _add_metadata(tmp, metadata)
    return path


def _add_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    graph = onnx.load(str(path))
    present = {entry.key for entry in graph.metadata_props}
    missing = {key: value for key, value in metadata.items() if key not in present}
    if not missing:
        return
    for key, value in missing.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(path))


def _session(path: Path, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        raise RadlabDataError(path, f"not a loadable ONNX model ({type(exc).__name__}: {exc})") from None


class ExportedModel(nn.Module):
    """An exported ONNX file behind the nn.Module interface radlab's inference loop calls: tensor in, logits
    out, whichever runtime runs it (ONNX Runtime, OpenVINO).

    `.to()`, `.eval()` and memory formats are accepted and have no effect: the runtimes run on the CPU. A
    graph with several outputs returns them as a tuple; `metadata` holds what export_onnx stored with it.
    """

    path: Path
    metadata: dict[str, str]

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise RadlabDataError(self.path, "missing: run `radlab export` on the run first")


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata export_onnx stored in an ONNX file (its weights left unread)."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends for a damaged file
        raise RadlabDataError(path, f"not a loadable ONNX model ({type(exc).__name__}: {exc})") from None
    return {entry.key: entry.value for entry in graph.metadata_props}


class OnnxRuntimeModel(ExportedModel):
    """An ONNX file run by ONNX Runtime on the CPU (see ExportedModel)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        super().__init__(path)
        self.session = _session(self.path, threads)
        self.outputs = [output.name for output in self.session.get_outputs()]
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        feed = np.ascontiguousarray(pixels.detach().cpu().float().numpy())
        results = tuple(torch.from_numpy(r) for r in self.session.run(self.outputs, {INPUT: feed}))
        return results[0] if len(results) == 1 else results


class _Calibration:
    """onnxruntime's CalibrationDataReader over batches of pixels (float32 0..255), fed one image at a time.

    The calibrator runs the graph with every tensor watched, and its memory grows with the batch: 22.8 GB for
    ResNeXt-101 at 480 px in batches of 8, 4.6 GB one image at a time. Min-max ranges are the same either way.
    """

    def __init__(self, batches: Iterable[np.ndarray]) -> None:
        self.images: Iterator[np.ndarray] = (batch[k : k + 1] for batch in batches for k in range(len(batch)))

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self.images, None)
        return None if image is None else {INPUT: np.ascontiguousarray(image, dtype=np.float32)}


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, calibration: Iterable[np.ndarray]) -> Path:
    """Static int8 quantisation (QDQ, per-channel weights, activations calibrated by min-max) of an ONNX file."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    int8_path = Path(int8_path)
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # the quantiser logs a warning per unquantisable weight on the root logger
    with atomic_path(int8_path, durable=False) as tmp:
        prepared = tmp.with_name(tmp.name + ".pre.onnx")
        try:
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(tmp),
                _Calibration(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
            _copy_metadata(Path(fp32_path), tmp)
        finally:
            root_logger.setLevel(level)
            if prepared.exists():
                os.unlink(prepared)
    return int8_path


def _copy_metadata(source: Path, target: Path) -> None:
    """The int8 file must carry its fp32 source's metadata (added where the quantiser did not keep it)."""
    metadata = read_metadata(source)
    if metadata:
        _add_metadata(target, metadata)
