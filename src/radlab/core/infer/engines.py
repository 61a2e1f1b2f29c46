"""Which engine runs a classifier at predict time: PyTorch, or the ONNX files `radlab export` wrote."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from radlab.core.errors import RadlabConfigError, RadlabDataError

ONNX_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"
ENGINES: dict[str, str | None] = {"torch": None, "onnx": ONNX_FILE, "int8": INT8_FILE}


WEIGHTS_KEY = "radlab_weights_blake2b"


def weights_stamp(folder: str | Path) -> dict[str, str]:
    """What an exported file records of the weights it was made from (their content hash)."""
    from radlab.core.io.cache import content_key

    weights = Path(folder) / "model.safetensors"
    return {WEIGHTS_KEY: content_key(weights)} if weights.is_file() else {}


def engine_model(model: nn.Module, run_dir: str | Path, engine: str) -> nn.Module:
    """`model` itself for "torch"; an ONNX Runtime session on RUN/model.onnx or RUN/model.int8.onnx otherwise,
    refused unless it was exported from the weights the run holds now (a retrained run must be exported
    again)."""
    if engine not in ENGINES:
        raise RadlabConfigError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    filename = ENGINES[engine]
    if filename is None:
        return model
    from radlab.core.infer.onnx import OnnxRuntimeModel

    network = OnnxRuntimeModel(Path(run_dir) / filename)
    recorded, current = network.metadata.get(WEIGHTS_KEY), weights_stamp(run_dir).get(WEIGHTS_KEY)
    if recorded != current:
        reason = "records no weights" if recorded is None else "was exported from other weights than the run's"
        raise RadlabDataError(network.path, f"{reason} (trained again since?); run `radlab export` again")
    return network
