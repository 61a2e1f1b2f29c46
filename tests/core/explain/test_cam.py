"""CAM: exact for global-pool heads, Grad-CAM otherwise, and on a bright-square image it points at the square."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radlab.core.explain import class_activation_maps, feature_map_cam, plain_cam_applies
from radlab.core.explain.overlay import resize_map
from radlab.core.models import build_image_classifier

SIZE, SQUARE = 64, 16


def _square_images(count: int, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray, list[tuple[int, int]]]:
    """Noise images; the positive ones hold one bright square, the only signal."""
    pixels = rng.normal(60, 20, (count, 1, SIZE, SIZE)).clip(0, 255)
    labels = rng.integers(0, 2, count)
    corners = []
    for i in range(count):
        row, col = (int(v) for v in rng.integers(4, SIZE - SQUARE - 4, 2))
        corners.append((row, col))
        if labels[i]:
            pixels[i, 0, row : row + SQUARE, col : col + SQUARE] = 220
    return torch.tensor(pixels, dtype=torch.float32), labels, corners


@pytest.fixture(scope="module")
def square_detector() -> torch.nn.Module:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the trained weights then do not depend on the runner's thread count
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_image_classifier("test_resnet", 1, [0.3] * 3, [0.2] * 3, output_stride=8)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        pixels, labels, _ = _square_images(32, rng)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(pixels).squeeze(1), torch.tensor(labels, dtype=torch.float32)
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    torch.set_num_threads(threads)
    return model.eval()


def _peak(cam: np.ndarray) -> tuple[float, float]:
    """The centre of the map's maximum at image size (ties, e.g. along a clamped border, averaged)."""
    heat = resize_map(cam, SIZE, SIZE)
    rows, cols = np.nonzero(heat >= heat.max() - 1e-6)
    return float(rows.mean()), float(cols.mean())


@pytest.mark.parametrize("method", ["cam", "gradcam"])
def test_cam_peak_falls_inside_the_bright_square(square_detector: torch.nn.Module, method: str) -> None:
    pixels, labels, corners = _square_images(60, np.random.default_rng(1))
    positive = np.flatnonzero(labels == 1)
    result = class_activation_maps(square_detector, pixels[positive], method=method)
    assert result.method == method
    inside = []
    for k, i in enumerate(positive):
        row, col = _peak(result.maps[k, 0])
        top, left = corners[i]
        inside.append(top <= row < top + SQUARE and left <= col < left + SQUARE)
    # A map blind to the square would land inside it about (16/64)^2 = 6% of the time.
    assert np.mean(inside) >= 0.8, f"{method}: peak inside the square in {np.mean(inside):.0%} of images"


def test_plain_cam_averages_to_the_logit(square_detector: torch.nn.Module) -> None:
    pixels, _, _ = _square_images(4, np.random.default_rng(2))
    backbone = square_detector.backbone
    with torch.no_grad():
        features = backbone.forward_features(square_detector.normalise(pixels))
        head = backbone.get_classifier()
        raw = feature_map_cam(features, head.weight, head.bias)
        torch.testing.assert_close(raw.mean(dim=(2, 3)), square_detector(pixels), atol=1e-5, rtol=1e-5)
    assert plain_cam_applies(square_detector, pixels)


@pytest.mark.parametrize(
    ("backbone", "expected"),
    [("test_resnet", "cam"), ("densenet121", "cam"), ("convnext_atto", "gradcam")],
)
def test_auto_uses_plain_cam_only_where_it_is_exact(backbone: str, expected: str) -> None:
    torch.manual_seed(0)
    model = build_image_classifier(backbone, 3, [0.5] * 3, [0.25] * 3).eval()
    result = class_activation_maps(model, torch.rand(2, 1, 64, 64) * 255, classes=[0, 2])
    assert result.method == expected
    assert result.maps.shape[:2] == (2, 2) and result.logits.shape == (2, 2)
    assert result.maps.min() >= 0.0 and result.maps.max() == pytest.approx(1.0)
