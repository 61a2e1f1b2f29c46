"""What the ONNX Runtime and OpenVINO tests share: a seeded classifier, and its int8 file with fresh pixels
and the classifier's own probabilities on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from radlab.core.infer.onnx import export_onnx, quantize_int8
from radlab.core.models import build_image_classifier


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return build_image_classifier("test_resnet", 2, [0.5] * 3, [0.25] * 3).eval()


@dataclass(frozen=True)
class Int8Case:
    """A classifier's int8 file (calibrated on 16 random images), 6 other images, its fp32 probabilities."""

    path: Path
    pixels: torch.Tensor
    reference: torch.Tensor


@pytest.fixture
def int8_case(classifier, tmp_path) -> Int8Case:
    fp32 = export_onnx(classifier, torch.rand(2, 1, 48, 48) * 255, tmp_path / "model.onnx", outputs=("logits",))
    rng = np.random.default_rng(0)
    calibration = [rng.uniform(0, 255, (4, 1, 48, 48)).astype(np.float32) for _ in range(4)]
    int8 = quantize_int8(fp32, tmp_path / "model.int8.onnx", calibration)
    pixels = torch.from_numpy(rng.uniform(0, 255, (6, 1, 48, 48)).astype(np.float32))
    with torch.no_grad():
        return Int8Case(int8, pixels, torch.sigmoid(classifier(pixels)))
