import numpy as np
import pytest

from radlab.tasks.pneumonia import AugmentConfig
from radlab.tasks.pneumonia.data import DetectionTransform, xywh_to_xyxy, xyxy_to_xywh


def _box_area(boxes):
    return float((boxes[:, 2] - boxes[:, 0]).item() * (boxes[:, 3] - boxes[:, 1]).item())


def test_resize_scales_boxes():
    image = np.zeros((1024, 1024), np.uint8)
    out, boxes = DetectionTransform(512)(image, np.array([[100.0, 200.0, 300.0, 600.0]]))
    assert out.shape == (1, 512, 512)
    np.testing.assert_allclose(boxes.numpy(), [[50, 100, 150, 300]])


@pytest.mark.parametrize("seed", range(5))
def test_rotation_does_not_grow_boxes(seed):
    """A square rotated by up to 40 degrees keeps its box area within a few percent (rotating its corners
    would grow it by up to 2x)."""
    rotation_only = AugmentConfig(
        scale_log2=0, rotate_deg=40, shear_deg=0, shift_fraction=0, hflip=0, gamma_log2=0, noise=0, blur=0
    )
    image = np.zeros((256, 256), np.uint8)
    square = np.array([[98.0, 98.0, 158.0, 158.0]])
    _, boxes = DetectionTransform(256, train=True, augment=rotation_only, seed=seed)(image, square)
    assert len(boxes) == 1
    assert 0.9 < _box_area(boxes) / 3600.0 < 1.08


def test_box_format_conversions_round_trip():
    boxes = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert xywh_to_xyxy(boxes).tolist() == [[1, 2, 4, 6]]
    assert xyxy_to_xywh(xywh_to_xyxy(boxes)).tolist() == boxes.tolist()


@pytest.mark.parametrize("train", [False, True])
def test_cached_items_equal_decoded_ones(tiny_pneumonia, tmp_path, train):
    from radlab.tasks.pneumonia import PneumoniaConfig
    from radlab.tasks.pneumonia.data import PneumoniaDataset

    augment = PneumoniaConfig.model_validate({}).augment

    def dataset(cache_dir):
        return PneumoniaDataset(
            tiny_pneumonia, "train", DetectionTransform(96, train, augment, seed=7), None, cache_dir
        )

    plain, cached = dataset(None), dataset(tmp_path / "cache")
    again = dataset(tmp_path / "cache")  # a second epoch's dataset reads the store the first one built
    assert len(list((tmp_path / "cache").rglob("data-*.npy"))) == 1
    with_boxes = 0
    for index in range(len(plain)):
        expected, got, reread = plain[index], cached[index], again[index]
        assert got["error"] == expected["error"] and got["size"] == expected["size"] == reread["size"]
        assert got["image"].shape == (1, 96, 96)
        assert np.array_equal(got["image"].numpy(), expected["image"].numpy())  # the same draws, the same pixels
        np.testing.assert_allclose(got["boxes"].numpy(), expected["boxes"].numpy(), atol=1e-3)
        with_boxes += len(expected["boxes"]) > 0
    assert with_boxes > 0
