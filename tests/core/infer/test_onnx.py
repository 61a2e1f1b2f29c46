"""ONNX export and ONNX Runtime: the same logits as PyTorch, int8 close to them, bad files named."""

from __future__ import annotations

import pytest
import torch

from radlab.core.errors import RadlabConfigError, RadlabDataError, RadlabError
from radlab.core.infer import engine_model
from radlab.core.infer.onnx import OnnxRuntimeModel, export_onnx


def test_onnx_runtime_gives_the_pytorch_logits_for_any_batch(classifier, tmp_path):
    path = export_onnx(classifier, torch.rand(2, 1, 48, 48) * 255, tmp_path / "model.onnx")
    session = OnnxRuntimeModel(path)
    for batch in (1, 5):
        pixels = torch.rand(batch, 1, 48, 48) * 255
        with torch.no_grad():
            torch.testing.assert_close(session(pixels), classifier(pixels), atol=1e-4, rtol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_int8_stays_close_to_fp32(int8_case, tmp_path):
    got = torch.sigmoid(OnnxRuntimeModel(int8_case.path)(int8_case.pixels))
    assert float((got - int8_case.reference).abs().max()) < 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx", "model.onnx"]


def test_engines_and_their_errors(classifier, tmp_path):
    assert engine_model(classifier, tmp_path, "torch") is classifier
    with pytest.raises(RadlabDataError, match="radlab export"):
        engine_model(classifier, tmp_path, "onnx")
    with pytest.raises(RadlabConfigError, match="unknown engine"):
        engine_model(classifier, tmp_path, "tensorrt")
    (tmp_path / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(RadlabDataError, match="not a loadable ONNX model"):
        engine_model(classifier, tmp_path, "onnx")


@pytest.mark.parametrize(
    ("engine", "provider"),
    [("onnx-cuda", "CUDAExecutionProvider"), ("onnx-tensorrt", "TensorrtExecutionProvider")],
)
def test_the_gpu_engines_are_installed_with_their_provider_and_refused_in_one_line_without(
    classifier, tmp_path, monkeypatch, engine, provider
):
    import onnxruntime as ort

    from radlab.core.infer import engines

    export_onnx(classifier, torch.rand(1, 1, 32, 32) * 255, tmp_path / "model.onnx")
    cpu_only = ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: cpu_only)
    assert engine not in engines.installed_engines()
    with pytest.raises(RadlabError) as error:
        engine_model(classifier, tmp_path, engine)
    assert str(error.value) == f"this ONNX Runtime has no {provider}: pip install onnxruntime-gpu (with CUDA)"
    # An onnxruntime-gpu build lists the provider on every machine; where it cannot start (no GPU, no CUDA
    # libraries) ONNX Runtime falls back to the CPU in silence: radlab neither lists nor runs it.
    monkeypatch.setattr(ort, "get_available_providers", lambda: [*engines.GPU_PROVIDERS[engine], *cpu_only])
    assert not engines.provider_starts(provider) and engine not in engines.installed_engines()
    with pytest.raises(RadlabError) as error:
        engine_model(classifier, tmp_path, engine)
    assert str(error.value) == f"ONNX Runtime could not start {provider} for model.onnx (its CUDA libraries?)"
    monkeypatch.setattr(engines, "provider_starts", lambda name: True)  # a machine where it starts
    assert engine in engines.installed_engines()


def test_the_cpu_engines_report_the_providers_they_run_on(classifier, tmp_path):
    path = export_onnx(classifier, torch.rand(1, 1, 32, 32) * 255, tmp_path / "model.onnx")
    assert OnnxRuntimeModel(path).providers == ["CPUExecutionProvider"]
