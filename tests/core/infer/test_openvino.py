"""OpenVINO on the files `radlab export` writes: PyTorch's logits in fp32, int8 close, the same checks as
ONNX Runtime's engines (weights stamp, missing files), and one line when OpenVINO is not installed."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from radlab.core.errors import RadlabDataError, RadlabError
from radlab.core.infer import engine_model
from radlab.core.infer.engines import WEIGHTS_KEY
from radlab.core.infer.onnx import ExportedModel, export_onnx, quantize_int8
from radlab.core.infer.openvino import OpenVinoModel, openvino_installed
from radlab.core.models import build_image_classifier

needs_openvino = pytest.mark.skipif(not openvino_installed(), reason="OpenVINO is not installed")


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return build_image_classifier("test_resnet", 2, [0.5] * 3, [0.25] * 3).eval()


@needs_openvino
def test_openvino_gives_the_pytorch_logits_for_any_batch_and_reads_the_metadata(classifier, tmp_path):
    path = export_onnx(classifier, torch.rand(2, 1, 48, 48) * 255, tmp_path / "model.onnx", metadata={"k": "v"})
    network = OpenVinoModel(path)
    assert isinstance(network, ExportedModel) and network.path == path and network.metadata == {"k": "v"}
    assert network.requests >= 1
    for batch in (1, 5):
        pixels = torch.rand(batch, 1, 48, 48) * 255
        with torch.no_grad():
            torch.testing.assert_close(network(pixels), classifier(pixels), atol=1e-4, rtol=1e-4)


@needs_openvino
def test_openvino_runs_the_int8_file_close_to_fp32_and_keeps_every_output(classifier, tmp_path):
    fp32 = export_onnx(classifier, torch.rand(2, 1, 48, 48) * 255, tmp_path / "model.onnx", outputs=("logits",))
    rng = np.random.default_rng(0)
    calibration = [rng.uniform(0, 255, (4, 1, 48, 48)).astype(np.float32) for _ in range(4)]
    int8 = quantize_int8(fp32, tmp_path / "model.int8.onnx", calibration)
    pixels = torch.from_numpy(rng.uniform(0, 255, (6, 1, 48, 48)).astype(np.float32))
    with torch.no_grad():
        reference = torch.sigmoid(classifier(pixels))
    got = torch.sigmoid(OpenVinoModel(int8, engine="openvino-int8")(pixels))
    assert got.shape == reference.shape and float((got - reference).abs().max()) < 0.05


@needs_openvino
@pytest.mark.parametrize("engine", ["openvino", "openvino-int8"])
def test_the_openvino_engines_are_refused_on_missing_or_stale_files(classifier, tmp_path, engine):
    with pytest.raises(RadlabDataError, match="radlab export"):
        engine_model(classifier, tmp_path, engine)
    name = "model.onnx" if engine == "openvino" else "model.int8.onnx"
    export_onnx(classifier, torch.rand(1, 1, 32, 32) * 255, tmp_path / name, metadata={WEIGHTS_KEY: "old"})
    with pytest.raises(RadlabDataError, match="other weights"):
        engine_model(classifier, tmp_path, engine)
    (tmp_path / name).write_bytes(b"not a graph")
    with pytest.raises(RadlabDataError, match="not a loadable ONNX model"):
        engine_model(classifier, tmp_path, engine)


@needs_openvino
def test_an_unstamped_file_runs_for_a_run_without_weights(classifier, tmp_path):
    export_onnx(classifier, torch.rand(1, 1, 32, 32) * 255, tmp_path / "model.onnx")
    assert isinstance(engine_model(classifier, tmp_path, "openvino"), OpenVinoModel)


def test_without_openvino_the_engine_says_how_to_install_it_in_one_line(classifier, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    with pytest.raises(RadlabError) as error:
        engine_model(classifier, tmp_path, "openvino-int8")
    assert str(error.value) == "--engine openvino-int8 needs OpenVINO: pip install radlab[openvino]"


@needs_openvino
def test_an_empty_batch_gives_empty_outputs_of_the_right_shape(classifier, tmp_path):
    path = export_onnx(classifier, torch.rand(2, 1, 32, 32) * 255, tmp_path / "model.onnx")
    logits = OpenVinoModel(path)(torch.zeros(0, 1, 32, 32))
    assert isinstance(logits, torch.Tensor) and logits.shape == (0, 2) and logits.dtype == torch.float32
