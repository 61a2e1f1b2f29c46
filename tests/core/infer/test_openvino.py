"""OpenVINO on the files `radlab export` writes: PyTorch's logits in fp32, int8 close, the same checks as
ONNX Runtime's engines (weights stamp, missing files), and one line when OpenVINO is not installed."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from radlab.core.errors import RadlabDataError, RadlabError
from radlab.core.infer import engine_model
from radlab.core.infer.engines import WEIGHTS_KEY, installed_engines
from radlab.core.infer.export import ExportPart, Int8Recipe, export_parts, exported_engines
from radlab.core.infer.nncf import nncf_installed
from radlab.core.infer.onnx import ExportedModel, export_onnx
from radlab.core.infer.openvino import OpenVinoModel, openvino_installed
from radlab.core.models import save_weights

needs_openvino = pytest.mark.skipif(not openvino_installed(), reason="OpenVINO is not installed")


@needs_openvino
@pytest.mark.parametrize("one_image", [False, True], ids=["dynamic-batch", "one-image"])
def test_openvino_gives_the_pytorch_logits_for_any_batch_and_reads_the_metadata(classifier, tmp_path, one_image):
    path = export_onnx(classifier, torch.rand(2, 1, 48, 48) * 255, tmp_path / "model.onnx", metadata={"k": "v"})
    network = OpenVinoModel(path, one_image=one_image)
    assert isinstance(network, ExportedModel) and network.path == path and network.metadata == {"k": "v"}
    assert network.requests >= 1
    assert network.compiled.inputs[0].get_partial_shape()[0].is_static == one_image
    for batch in (0, 1, 5):
        pixels = torch.rand(batch, 1, 48, 48) * 255
        with torch.no_grad():
            torch.testing.assert_close(network(pixels), classifier(pixels), atol=1e-4, rtol=1e-4)


@needs_openvino
def test_openvino_runs_the_int8_file_close_to_fp32_and_keeps_every_output(int8_case):
    got = torch.sigmoid(OpenVinoModel(int8_case.path, engine="openvino-int8")(int8_case.pixels))
    assert got.shape == int8_case.reference.shape and float((got - int8_case.reference).abs().max()) < 0.05


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
def test_an_unstamped_file_runs_for_a_run_without_weights_and_fp32_alone_fixes_the_batch(classifier, tmp_path):
    export_onnx(classifier, torch.rand(1, 1, 32, 32) * 255, tmp_path / "model.onnx")
    export_onnx(classifier, torch.rand(1, 1, 32, 32) * 255, tmp_path / "model.int8.onnx")
    fixed = {}
    for engine in ("openvino", "openvino-int8"):
        network = engine_model(classifier, tmp_path, engine)
        assert isinstance(network, OpenVinoModel)
        fixed[engine] = network.compiled.inputs[0].get_partial_shape()[0].is_static
    assert fixed == {"openvino": True, "openvino-int8": False}  # a fixed batch crashes OpenVINO on QDQ files


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


needs_nncf = pytest.mark.skipif(not nncf_installed(), reason="NNCF is not installed")


def _calibration(count: int):
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 255, (2, 1, 48, 48)).astype(np.float32) for _ in range(count // 2))


@needs_nncf
def test_nncf_int8_runs_close_to_pytorch_beside_the_other_files_and_is_refused_once_stale(classifier, tmp_path):
    save_weights(tmp_path / "model.safetensors", classifier.state_dict())
    part = ExportPart(tmp_path, classifier, torch.rand(2, 1, 48, 48) * 255, _calibration)
    report = export_parts(tmp_path, [part], int8=Int8Recipe(calibration=8))
    assert report["files"] == ["model.onnx", "model.int8.onnx", "model.nncf.xml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.int8.onnx", "model.nncf.bin", "model.nncf.xml", "model.onnx", "model.safetensors"
    ]  # fmt: skip
    assert "openvino-nncf" in exported_engines(report)
    network = engine_model(classifier, tmp_path, "openvino-nncf")
    assert isinstance(network, OpenVinoModel) and network.metadata[WEIGHTS_KEY]
    pixels = torch.from_numpy(np.random.default_rng(1).uniform(0, 255, (5, 1, 48, 48)).astype(np.float32))
    with torch.no_grad():
        reference = torch.sigmoid(classifier(pixels))
    assert float((torch.sigmoid(network(pixels)) - reference).abs().max()) < 0.05
    save_weights(tmp_path / "model.safetensors", {k: v + 1 for k, v in classifier.state_dict().items()})
    with pytest.raises(RadlabDataError, match="other weights"):
        engine_model(classifier, tmp_path, "openvino-nncf")


@needs_nncf
def test_a_network_nncf_cannot_quantise_is_one_warning_and_no_earlier_ir_is_left(
    classifier, tmp_path, monkeypatch, capfd
):
    def refuse(*args, **kwargs):
        raise RuntimeError("unsupported operation\nwith a second line")

    monkeypatch.setattr("radlab.core.infer.export.quantize_nncf", refuse)
    (tmp_path / "model.nncf.xml").write_text("<an earlier export's IR/>")
    (tmp_path / "model.nncf.bin").write_bytes(b"old weights")
    part = ExportPart(tmp_path, classifier, torch.rand(2, 1, 48, 48) * 255, _calibration)
    report = export_parts(tmp_path, [part], int8=Int8Recipe(calibration=4))
    assert report["files"] == ["model.onnx", "model.int8.onnx"] and "openvino-nncf" not in exported_engines(report)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx", "model.onnx"]  # no stale IR to run
    warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {tmp_path / 'model.onnx'}: NNCF could not quantise it (RuntimeError: unsupported operation); "
        "no model.nncf.xml"
    ]


def test_the_nncf_engine_is_installed_only_with_nncf(monkeypatch):
    monkeypatch.setattr("radlab.core.infer.nncf.nncf_installed", lambda: False)
    assert "openvino-nncf" not in installed_engines()
    monkeypatch.setattr("radlab.core.infer.nncf.nncf_installed", lambda: True)
    monkeypatch.setattr("radlab.core.infer.openvino.openvino_installed", lambda: True)
    assert "openvino-nncf" in installed_engines() and "openvino-nncf" not in installed_engines(("model.onnx",))
