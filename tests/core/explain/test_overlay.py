"""Overlays come back at the original image's size; boxes land where they were asked to."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from radlab.core.explain import draw_boxes, overlay_heatmap, save_png


@pytest.mark.parametrize("shape", [(50, 70), (50, 70, 3), (31, 17, 1)])
def test_overlay_keeps_the_original_size(shape: tuple[int, ...]) -> None:
    image = np.full(shape, 100, dtype=np.uint8)
    cam = np.zeros((4, 4), dtype=np.float32)
    cam[0, 0] = 1.0
    out = overlay_heatmap(image, cam)
    assert out.shape == (*shape[:2], 3) and out.dtype == np.uint8
    assert not np.array_equal(out[0, 0], out[-1, -1])  # the hot corner differs from the cold one


def test_boxes_are_drawn_on_their_outline(tmp_path) -> None:
    image = np.zeros((40, 60), dtype=np.uint8)
    out = draw_boxes(image, np.array([[10, 5, 30, 25]]), scores=[0.9], width=1)
    assert tuple(out[5, 20]) == (255, 64, 64) and tuple(out[15, 10]) == (255, 64, 64)
    assert tuple(out[35, 50]) == (0, 0, 0)
    path = save_png(tmp_path / "a" / "boxes.png", out)
    assert np.array_equal(np.asarray(Image.open(path)), out)
    assert [p.name for p in path.parent.iterdir()] == ["boxes.png"]
