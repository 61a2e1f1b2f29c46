"""Which engine runs a classifier at predict time: PyTorch, or the ONNX files `radlab export` wrote, run by
ONNX Runtime ("onnx", "int8") or OpenVINO ("openvino", "openvino-int8", with `pip install radlab[openvino]`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from radlab.core.errors import RadlabConfigError, RadlabDataError

if TYPE_CHECKING:
    from radlab.core.infer.onnx import ExportedModel

ONNX_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"
ENGINES: dict[str, str | None] = {
    "torch": None,
    "onnx": ONNX_FILE,
    "int8": INT8_FILE,
    "openvino": ONNX_FILE,
    "openvino-int8": INT8_FILE,
}
OPENVINO_ENGINES = ("openvino", "openvino-int8")


WEIGHTS_KEY = "radlab_weights_blake2b"


def weights_stamp(folder: str | Path) -> dict[str, str]:
    """What an exported file records of the weights it was made from (their content hash)."""
    from radlab.core.io.cache import content_key

    weights = Path(folder) / "model.safetensors"
    return {WEIGHTS_KEY: content_key(weights)} if weights.is_file() else {}


def installed_engines(files: tuple[str, ...] = (ONNX_FILE, INT8_FILE)) -> list[str]:
    """The engines whose runtime is installed, in ENGINES order, among those that run `files` (or torch)."""
    from radlab.core.infer.openvino import openvino_installed

    usable = [e for e, f in ENGINES.items() if f is None or f in files]
    return [e for e in usable if e not in OPENVINO_ENGINES or openvino_installed()]


def exported_model(path: Path, engine: str) -> ExportedModel:
    """The runtime of `engine` on an exported file."""
    if engine in OPENVINO_ENGINES:
        from radlab.core.infer.openvino import OpenVinoModel

        return OpenVinoModel(path, engine=engine)
    from radlab.core.infer.onnx import OnnxRuntimeModel

    return OnnxRuntimeModel(path)


def engine_model(model: nn.Module, run_dir: str | Path, engine: str) -> nn.Module:
    """`model` itself for "torch"; the engine's runtime on RUN/model.onnx or RUN/model.int8.onnx otherwise,
    refused unless it was exported from the weights the run holds now (a retrained run must be exported
    again)."""
    if engine not in ENGINES:
        raise RadlabConfigError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    filename = ENGINES[engine]
    if filename is None:
        return model
    network = exported_model(Path(run_dir) / filename, engine)
    recorded, current = network.metadata.get(WEIGHTS_KEY), weights_stamp(run_dir).get(WEIGHTS_KEY)
    if recorded != current:
        reason = "records no weights" if recorded is None else "was exported from other weights than the run's"
        raise RadlabDataError(network.path, f"{reason} (trained again since?); run `radlab export` again")
    return network
