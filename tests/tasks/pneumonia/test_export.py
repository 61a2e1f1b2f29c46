"""`radlab export` for RSNA Pneumonia and `pneumonia predict --engine`: the detector's network in ONNX gives
torch's boxes and scores once decoded in PyTorch; int8 stays close; the file carries its level sizes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from radlab.core.infer.nncf import nncf_installed
from radlab.core.infer.onnx import OnnxRuntimeModel
from radlab.tasks.pneumonia.formats import TEST_IMAGES
from radlab.tasks.pneumonia.predict import load_run
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def exported(tiny_pneumonia_run, tmp_path_factory):
    """One export for the module's tests (they only read it)."""
    run = tmp_path_factory.mktemp("pneumonia-export") / "run"
    shutil.copytree(tiny_pneumonia_run, run)
    config = run / "config.yaml"  # one epoch scores every anchor under the floor: keep them all, boxes to compare
    assert "score_floor: 0.025" in config.read_text()
    config.write_text(config.read_text().replace("score_floor: 0.025", "score_floor: 0.0"))
    result = run_cli("export", run, "--int8", "--calibration", "8")
    assert result.returncode == 0, result.stderr
    return run


def test_export_writes_the_network_with_its_level_sizes_and_compares_engines(exported):
    report = json.loads((exported / "export.json").read_text())
    nncf = ["model.nncf.xml"] if nncf_installed() else []
    assert report["files"] == ["model.onnx", "model.int8.onnx", *nncf] and report["calibration_images"] == 8
    held_out = json.loads((exported / "split.json").read_text())["valid"]
    assert report["validation_images"] == len(held_out)
    validation = report["validation"]
    from radlab.core.infer.openvino import openvino_installed

    assert list(validation) == [
        "torch",
        "onnx",
        "int8",
        *(["openvino", "openvino-int8"] if openvino_installed() else []),
        *(["openvino-nncf"] if nncf_installed() else []),
    ]
    assert validation["onnx"]["max_abs_prob_diff"] <= 1e-4  # the submission's 4 decimals
    assert validation["onnx"]["mAP_change"] == pytest.approx(0.0, abs=1e-9)
    for name in ("model.onnx", "model.int8.onnx"):
        metadata = OnnxRuntimeModel(exported / name).metadata
        assert metadata["image_size"] == "128"
        assert [tuple(s) for s in json.loads(metadata["level_shapes"])] == [(128 // 2**k,) * 2 for k in range(3, 8)]


def test_onnx_detector_gives_torchs_detections(exported):
    _, detector = load_run(exported)
    _, onnx_detector = load_run(exported, "onnx")
    pixels = torch.rand(3, 1, 128, 128) * 255
    with torch.inference_mode():
        expected, got = detector(pixels, detect=True), onnx_detector(pixels, detect=True)
    torch.testing.assert_close(got["global"], expected["global"], atol=1e-4, rtol=1e-4)
    for mine, theirs in zip(got["detections"], expected["detections"], strict=True):
        torch.testing.assert_close(mine["scores"], theirs["scores"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(mine["boxes"], theirs["boxes"], atol=1e-2, rtol=1e-4)


def test_an_export_for_another_image_size_is_refused(exported, tiny_pneumonia, tmp_path):
    exported = Path(shutil.copytree(exported, tmp_path / "run"))
    config = exported / "config.yaml"
    config.write_text(config.read_text().replace("image_size: 128", "image_size: 96"))
    result = run_cli(
        "pneumonia",
        "predict",
        tiny_pneumonia / TEST_IMAGES,
        tmp_path / "o.csv",
        "--model",
        exported,
        "--engine",
        "onnx",
    )
    assert result.returncode == 1 and "another image size" in result.stderr and "Traceback" not in result.stderr
