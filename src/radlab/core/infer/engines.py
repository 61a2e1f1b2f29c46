"""Which engine runs a classifier at predict time: PyTorch, or the files `radlab export` wrote, run by ONNX
Runtime on the CPU ("onnx", "int8") or on a GPU through its CUDA or TensorRT execution providers
("onnx-cuda", "onnx-tensorrt", with onnxruntime-gpu), or by OpenVINO on the CPU ("openvino", "openvino-int8",
and "openvino-nncf" on NNCF's int8 IR, model.nncf.xml; with `pip install radlab[openvino]`). An engine is
installed when its runtime (and provider, and for openvino-nncf the NNCF that exports it) can be loaded."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from radlab.core.errors import RadlabConfigError, RadlabDataError

if TYPE_CHECKING:
    from radlab.core.infer.onnx import ExportedModel

ONNX_FILE, INT8_FILE, NNCF_FILE = "model.onnx", "model.int8.onnx", "model.nncf.xml"
ENGINES: dict[str, str | None] = {
    "torch": None,
    "onnx": ONNX_FILE,
    "int8": INT8_FILE,
    "openvino": ONNX_FILE,
    "openvino-int8": INT8_FILE,
    "openvino-nncf": NNCF_FILE,
    "onnx-cuda": ONNX_FILE,
    "onnx-tensorrt": ONNX_FILE,
}
OPENVINO_ENGINES = ("openvino", "openvino-int8", "openvino-nncf")
GPU_PROVIDERS: dict[str, tuple[str, ...]] = {
    "onnx-cuda": ("CUDAExecutionProvider",),
    "onnx-tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider"),
}
"""ONNX Runtime's execution providers of the GPU engines, first choice first (the CPU takes what they do not)."""


WEIGHTS_KEY = "radlab_weights_blake2b"


def weights_stamp(folder: str | Path) -> dict[str, str]:
    """What an exported file records of the weights it was made from (their content hash)."""
    from radlab.core.io.cache import content_key

    weights = Path(folder) / "model.safetensors"
    return {WEIGHTS_KEY: content_key(weights)} if weights.is_file() else {}


def installed_engines(files: tuple[str, ...] = (ONNX_FILE, INT8_FILE, NNCF_FILE)) -> list[str]:
    """The engines whose runtime is installed, in ENGINES order, among those that run `files` (or torch)."""
    from radlab.core.infer.nncf import nncf_installed
    from radlab.core.infer.openvino import openvino_installed

    usable = [e for e, f in ENGINES.items() if f is None or f in files]
    providers = _available_providers()
    return [
        e
        for e in usable
        if (e not in OPENVINO_ENGINES or openvino_installed())
        and (ENGINES[e] != NNCF_FILE or nncf_installed())  # export writes its file only with NNCF
        and (e not in GPU_PROVIDERS or (GPU_PROVIDERS[e][0] in providers and provider_starts(GPU_PROVIDERS[e][0])))
    ]


def _available_providers() -> list[str]:
    """The execution providers this ONNX Runtime build has (CUDA and TensorRT come with onnxruntime-gpu)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


@functools.cache
def provider_starts(provider: str) -> bool:
    """Whether ONNX Runtime can start `provider` here: an onnxruntime-gpu build lists its CUDA and TensorRT
    providers on every machine, with a GPU and its libraries or not, so a one-node graph is tried once."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    value = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", value[:1], value[1:])
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fallback to the CPU is what is being detected
            session = ort.InferenceSession(probe.SerializeToString(), providers=[provider, "CPUExecutionProvider"])
    except Exception:  # a provider that fails to load raises from its own library
        return False
    return provider in session.get_providers()


def exported_model(path: Path, engine: str) -> ExportedModel:
    """The runtime of `engine` on an exported file."""
    if engine in OPENVINO_ENGINES:
        from radlab.core.infer.openvino import OpenVinoModel

        return OpenVinoModel(path, engine=engine, one_image=ENGINES[engine] == ONNX_FILE)
    from radlab.core.infer.onnx import OnnxRuntimeModel

    return OnnxRuntimeModel(path, providers=GPU_PROVIDERS.get(engine, ()))


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
