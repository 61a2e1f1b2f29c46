"""ONNX export and ONNX Runtime inference, fp32 and static int8 (OpenVINO runs the same files: openvino.py).

The exported graph takes what radlab's classifiers take, pixels 0..255 as float32 (N, C, H, W), with the
normalisation inside, so every engine sees the same input. Int8 models are quantised statically (QDQ,
per-channel weights) on calibration batches the caller draws from training images.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from radlab.core.errors import RadlabDataError, RadlabError
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


CPU_PROVIDER = "CPUExecutionProvider"


def _session(path: Path, threads: int | None, providers: tuple[str, ...] = ()):
    """An ONNX Runtime session on `providers` (first choice first), the CPU as the fallback for the nodes they
    do not take; refused in one line when the first of them cannot start (its libraries missing), since
    ONNX Runtime would otherwise fall back to the CPU without a word."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if providers and providers[0] not in ort.get_available_providers():
        raise RadlabError(f"this ONNX Runtime has no {providers[0]}: pip install onnxruntime-gpu (with CUDA)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a provider that cannot start: refused below, in one line
            session = ort.InferenceSession(str(path), options, providers=[*providers, CPU_PROVIDER])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        raise RadlabDataError(path, f"not a loadable ONNX model ({type(exc).__name__}: {exc})") from None
    if providers and providers[0] not in session.get_providers():
        raise RadlabError(f"ONNX Runtime could not start {providers[0]} for {path.name} (its CUDA libraries?)")
    return session


class ExportedModel(nn.Module):
    """An exported ONNX file behind the nn.Module interface radlab's inference loop calls: tensor in, logits
    out, whichever runtime runs it (ONNX Runtime, OpenVINO).

    `.to()`, `.eval()` and memory formats are accepted and have no effect: the runtime places the work (the
    CPU, or the GPU of ONNX Runtime's CUDA and TensorRT providers), and outputs come back on the CPU. A
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
    """An ONNX file run by ONNX Runtime, on the CPU or on the execution `providers` given (CUDA, TensorRT;
    see ExportedModel)."""

    def __init__(self, path: str | Path, threads: int | None = None, providers: tuple[str, ...] = ()) -> None:
        super().__init__(path)
        self.session = _session(self.path, threads, providers)
        self.providers: list[str] = list(self.session.get_providers())
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


INT8_METHODS = ("minmax", "percentile")
"""How activation ranges are calibrated: the observed min and max, or the 99.999th percentile of |x| (ONNX
Runtime's MinMax and Percentile). Its Entropy method is not offered: through quantize_static it builds 128
histogram bins for 128 quantised bins, so the only threshold it can choose is the whole range, and it wrote
the very scales min-max writes (measured on ONNX Runtime 1.32)."""
KEEP_FLOAT = ("none", "ends")
"""Which layers stay float in the int8 file: none, or its first and last quantisable layers (the stem sees
raw pixels, the head writes the logits: the two a quantisation error hurts most)."""
QUANTISABLE = ("Conv", "MatMul", "Gemm")


def float_nodes(path: str | Path, keep_float: str) -> list[str]:
    """The names of the nodes `keep_float` leaves in float in the ONNX file at `path` (graph order)."""
    import onnx

    if keep_float not in KEEP_FLOAT:
        raise ValueError(f"keep_float {keep_float!r}: choose from {', '.join(KEEP_FLOAT)}")
    if keep_float == "none":
        return []
    layers = [
        node.name for node in onnx.load(str(path), load_external_data=False).graph.node if node.op_type in QUANTISABLE
    ]
    return sorted(set(layers[:1] + layers[-1:]), key=layers.index)


def quantize_int8(
    fp32_path: str | Path,
    int8_path: str | Path,
    calibration: Iterable[np.ndarray],
    method: str = "minmax",
    keep_float: str = "none",
) -> Path:
    """Static int8 quantisation (QDQ, per-channel weights, activations calibrated by `method`, the layers
    `keep_float` names left in float) of an ONNX file."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in INT8_METHODS:
        raise ValueError(f"int8 method {method!r}: choose from {', '.join(INT8_METHODS)}")
    calibrate_method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}[method]

    int8_path = Path(int8_path)
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # the quantiser logs a warning per unquantisable weight on the root logger
    with atomic_path(int8_path, durable=False) as tmp:
        prepared = tmp.with_name(tmp.name + ".pre.onnx")
        try:
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
            excluded = float_nodes(prepared, keep_float)
            with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print their progress
                quantize_static(
                    str(prepared),
                    str(tmp),
                    _Calibration(calibration),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=calibrate_method,
                    nodes_to_exclude=excluded,
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
