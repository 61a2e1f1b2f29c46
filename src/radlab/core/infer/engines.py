"""Which engine runs a classifier at predict time: PyTorch, or the ONNX files `radlab export` wrote."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from radlab.core.errors import RadlabConfigError

ONNX_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"
ENGINES: dict[str, str | None] = {"torch": None, "onnx": ONNX_FILE, "int8": INT8_FILE}


def engine_model(model: nn.Module, run_dir: str | Path, engine: str) -> nn.Module:
    """`model` itself for "torch"; an ONNX Runtime session on RUN/model.onnx or RUN/model.int8.onnx otherwise."""
    if engine not in ENGINES:
        raise RadlabConfigError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    filename = ENGINES[engine]
    if filename is None:
        return model
    from radlab.core.infer.onnx import OnnxRuntimeModel

    return OnnxRuntimeModel(Path(run_dir) / filename)
