"""OpenVINO inference of the files `radlab export` writes (model.onnx, the QDQ model.int8.onnx, whose int8
convolutions OpenVINO runs with this CPU's integer kernels, and NNCF's IR model.nncf.xml; see nncf.py).

The network is compiled for the CPU with the THROUGHPUT hint, which splits the cores into streams, and every
image of a batch is an infer request of its own, so that each stream has one in flight (as many requests as
OpenVINO says pay: OPTIMAL_NUMBER_OF_INFER_REQUESTS). On DenseNet-169 at 320 px on 2 cores that ran 12.8
images/s against 11.1 for the whole batch as one request. The fp32 graph is compiled with its batch axis fixed
at one image, which ran 6 to 13 % faster than the dynamic axis (14.5-14.9 against 13.2-13.7 images/s, at or
above the measured fp32 matmul ceiling); the QDQ int8 file keeps its dynamic axis, because fixing it crashes
OpenVINO 2026.4's CPU plugin (the process dies, nothing to catch). Float layers run in float32 (not the bf16
OpenVINO picks on CPUs that have it), so the fp32 engine agrees with PyTorch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core.errors import RadlabDataError, RadlabError
from radlab.core.infer.nncf import ir_metadata
from radlab.core.infer.onnx import ExportedModel, read_metadata


def openvino_installed() -> bool:
    """Whether the OpenVINO runtime can be imported (without importing it)."""
    return importlib.util.find_spec("openvino") is not None


def require_openvino(engine: str) -> Any:
    """The `openvino` module, or one line on how to install it."""
    try:
        import openvino
    except ImportError:
        raise RadlabError(f"--engine {engine} needs OpenVINO: pip install radlab[openvino]") from None
    return openvino


def _empty_output(output: Any) -> np.ndarray:
    """What an output is for an empty batch: no rows, the rest of its shape (unknown axes as 0)."""
    shape = [0, *(d.get_length() if d.is_static else 0 for d in list(output.get_partial_shape())[1:])]
    return np.zeros(shape, dtype=output.get_element_type().to_dtype())


def _one_image(port: Any) -> Any:
    """An input's shape with its batch axis fixed at 1 (the other axes as exported)."""
    shape = port.get_partial_shape()
    shape[0] = 1
    return shape


class OpenVinoModel(ExportedModel):
    """An ONNX file run by OpenVINO on the CPU, one infer request per image (see ExportedModel)."""

    def __init__(
        self, path: str | Path, threads: int | None = None, engine: str = "openvino", one_image: bool = False
    ) -> None:
        """`one_image` compiles the graph for a batch of exactly one (every request is one image anyway)."""
        ov = require_openvino(engine)
        super().__init__(path)
        ir = self.path.suffix == ".xml"  # NNCF's IR (nncf.py); otherwise an ONNX file, its metadata read first
        onnx_metadata = {} if ir else read_metadata(self.path)
        core = ov.Core()
        settings = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
        }
        try:
            network = core.read_model(str(self.path))
            if one_image:
                network.reshape({port: _one_image(port) for port in network.inputs})
            self.compiled = core.compile_model(network, "CPU", settings)
        except RuntimeError as exc:  # OpenVINO raises RuntimeError for graphs it cannot read or compile
            raise RadlabDataError(self.path, f"OpenVINO cannot run this model ({exc})".splitlines()[0]) from None
        self.metadata = ir_metadata(network) if ir else onnx_metadata
        self.outputs = len(self.compiled.outputs)
        self._empty = [_empty_output(output) for output in self.compiled.outputs]
        self.requests = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.queue = ov.AsyncInferQueue(self.compiled, self.requests)
        self.queue.set_callback(self._collect)

    def _collect(self, request: Any, slot: tuple[list[Any], int]) -> None:
        results, k = slot
        results[k] = [np.array(request.get_output_tensor(i).data) for i in range(self.outputs)]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        feed = np.ascontiguousarray(pixels.detach().cpu().float().numpy())
        if len(feed) == 0:
            merged = [empty.copy() for empty in self._empty]
        else:
            results: list[Any] = [None] * len(feed)
            for k in range(len(feed)):
                self.queue.start_async({0: feed[k : k + 1]}, (results, k))
            self.queue.wait_all()
            merged = [np.concatenate([r[i] for r in results]) for i in range(self.outputs)]
        tensors = tuple(torch.from_numpy(m) for m in merged)
        return tensors[0] if len(tensors) == 1 else tensors
