"""What the tasks' exports share: parts written beside their weights (int8 too), several outputs and
metadata kept in the file, and the engine comparison's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from radlab.core.infer.export import ExportPart, compare_engines, export_parts, exported_engines
from radlab.core.infer.onnx import OnnxRuntimeModel
from radlab.core.infer.openvino import openvino_installed


class _TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.relu(self.conv(pixels / 255))
        return x.mean(dim=(2, 3)), x.amax(dim=(2, 3))


def _calibration(count: int):
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 255, (2, 1, 16, 16)).astype(np.float32) for _ in range(count // 2))


def test_parts_are_written_in_their_folders_with_outputs_and_metadata(tmp_path):
    torch.manual_seed(0)
    modules = {name: _TwoHeads().eval() for name in ("a", "b")}
    parts = [
        ExportPart(tmp_path / name, module, torch.rand(2, 1, 16, 16) * 255, _calibration, ("mean", "max"), {"k": name})
        for name, module in modules.items()
    ]
    for part in parts:
        part.folder.mkdir()
    report = export_parts(tmp_path, parts, int8=True, calibration=4)
    assert report == {
        "opset": 17,
        "files": ["a/model.onnx", "a/model.int8.onnx", "b/model.onnx", "b/model.int8.onnx"],
        "calibration_images": 4,
    }
    assert exported_engines(report)[:3] == ["torch", "onnx", "int8"]
    pixels = torch.rand(3, 1, 16, 16) * 255
    for name, module in modules.items():
        for file in ("model.onnx", "model.int8.onnx"):
            session = OnnxRuntimeModel(tmp_path / name / file)
            assert session.outputs == ["mean", "max"] and session.metadata["k"] == name  # int8 keeps it
        mean, top = OnnxRuntimeModel(tmp_path / name / "model.onnx")(pixels)
        with torch.no_grad():
            expected = module(pixels)
        torch.testing.assert_close((mean, top), expected, atol=1e-5, rtol=1e-5)


def test_fp32_only_serves_the_fp32_engines(tmp_path):
    part = ExportPart(tmp_path, _TwoHeads().eval(), torch.rand(1, 1, 16, 16), outputs=("mean", "max"))
    report = export_parts(tmp_path, [part], int8=False, calibration=8)
    assert report == {"opset": 17, "files": ["model.onnx"]}
    assert exported_engines(report) == ["torch", "onnx", *(["openvino"] if openvino_installed() else [])]


def test_openvino_engines_are_checked_only_where_openvino_is_installed(monkeypatch):
    report = {"files": ["model.onnx", "model.int8.onnx"]}
    monkeypatch.setattr("radlab.core.infer.openvino.openvino_installed", lambda: True)
    assert exported_engines(report) == ["torch", "onnx", "int8", "openvino", "openvino-int8"]
    monkeypatch.setattr("radlab.core.infer.openvino.openvino_installed", lambda: False)
    assert exported_engines(report) == ["torch", "onnx", "int8"]


@pytest.mark.parametrize(
    ("scores", "values", "expected"),
    [
        (
            {"torch": 0.8, "onnx": 0.8, "int8": 0.75},
            {"torch": [0.1, 0.9], "onnx": [0.1, 0.9], "int8": [0.15, 0.7]},
            {"onnx": (0.0, 0.0), "int8": (-0.05, 0.2)},
        ),
        (
            {"torch": None, "onnx": 0.5},
            {"torch": [0.2, np.nan], "onnx": [0.3, np.nan]},
            {"onnx": (None, 0.1)},
        ),
    ],
)
def test_each_engine_is_compared_with_the_first(scores, values, expected):
    results = compare_engines(list(scores), lambda e: (scores[e], np.array(values[e])), "kappa")
    assert list(results) == list(scores) and results["torch"] == {"kappa": scores["torch"]}
    for engine, (change, diff) in expected.items():
        assert results[engine]["kappa"] == scores[engine]
        assert results[engine]["kappa_change"] == (None if change is None else pytest.approx(change))
        assert results[engine]["max_abs_prob_diff"] == pytest.approx(diff)
