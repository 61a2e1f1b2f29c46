"""What the tasks' exports share: parts written beside their weights (int8 too), several outputs and
metadata kept in the file, and the engine comparison's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from radlab.core.errors import RadlabConfigError
from radlab.core.infer.export import (
    ExportPart,
    Int8Recipe,
    compare_engines,
    export_parts,
    export_run,
    exported_engines,
)
from radlab.core.infer.nncf import nncf_installed
from radlab.core.infer.onnx import OnnxRuntimeModel, float_nodes
from radlab.core.infer.openvino import openvino_installed
from radlab.core.task import get_task


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
    report = export_parts(tmp_path, parts, int8=Int8Recipe(calibration=4))
    nncf = ["model.nncf.xml"] if nncf_installed() else []
    assert report == {
        "opset": 17,
        "files": [f"{p}/{f}" for p in ("a", "b") for f in ("model.onnx", "model.int8.onnx", *nncf)],
        "calibration_images": 4,
        "int8": {"method": "minmax", "keep_float": "none"},
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
    report = export_parts(tmp_path, [part])
    assert report == {"opset": 17, "files": ["model.onnx"]}
    assert exported_engines(report) == ["torch", "onnx", *(["openvino"] if openvino_installed() else [])]


class _Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.body = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.body(torch.relu(self.stem(pixels / 255))))
        return self.head(x.mean(dim=(2, 3)))


def _quantised_inputs(path) -> dict[str, bool]:
    """For each Conv/Gemm/MatMul of an int8 file: whether its first input comes through DequantizeLinear."""
    import onnx

    graph = onnx.load(str(path)).graph
    producers = {output: node.op_type for node in graph.node for output in node.output}
    layers = [node for node in graph.node if node.op_type in ("Conv", "Gemm", "MatMul")]
    return {node.name: producers.get(node.input[0]) == "DequantizeLinear" for node in layers}


@pytest.mark.parametrize("method", ["minmax", "percentile"])
@pytest.mark.parametrize("keep_float", ["none", "ends"])
def test_every_int8_recipe_stays_close_to_fp32_and_keeps_the_layers_it_names_float(tmp_path, method, keep_float):
    torch.manual_seed(0)
    module = _Classifier().eval()
    part = ExportPart(tmp_path, module, torch.rand(2, 1, 16, 16) * 255, _calibration)
    report = export_parts(tmp_path, [part], int8=Int8Recipe(8, method, keep_float))
    assert report["int8"] == {"method": method, "keep_float": keep_float}
    quantised = _quantised_inputs(tmp_path / "model.int8.onnx")
    layers = list(quantised)
    assert len(layers) == 3 and float_nodes(tmp_path / "model.onnx", keep_float) == (
        [] if keep_float == "none" else [layers[0], layers[-1]]
    )
    expected = [True, True, True] if keep_float == "none" else [False, True, False]
    assert list(quantised.values()) == expected
    pixels = torch.rand(4, 1, 16, 16) * 255
    with torch.no_grad():
        reference = torch.softmax(module(pixels), 1)
    got = torch.softmax(OnnxRuntimeModel(tmp_path / "model.int8.onnx")(pixels), 1)
    assert float((got - reference).abs().max()) < 0.05


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ({"method": "entropy"}, "--int8-method 'entropy': choose from minmax, percentile"),
        ({"keep_float": "all"}, "--int8-keep-float 'all': choose from none, ends"),
    ],
)
def test_an_unknown_int8_recipe_is_one_line(recipe, message):
    with pytest.raises(RadlabConfigError) as error:
        Int8Recipe(**recipe)
    assert str(error.value) == message


def test_an_int8_recipe_without_int8_is_refused_before_the_run_is_read(tmp_path):
    with pytest.raises(RadlabConfigError) as error:
        export_run(get_task("toy"), tmp_path / "no-run", int8_method="percentile")
    assert str(error.value) == "--int8-method and --int8-keep-float choose the int8 recipe: add --int8"


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
