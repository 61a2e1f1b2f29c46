import numpy as np
import pytest
import torch

from radlab.core.transforms import build_image_transform


def _image(h=50, w=80):
    return np.random.default_rng(0).integers(0, 255, (h, w), dtype=np.uint8)


@pytest.mark.parametrize(("channels", "resize"), [(1, "stretch"), (3, "stretch"), (1, "pad")])
def test_output_shape_and_dtype(channels, resize):
    transform = build_image_transform(32, channels=channels, resize=resize)
    out = transform(_image())
    assert out.dtype == torch.uint8 and tuple(out.shape) == transform.output_shape == (channels, 32, 32)


def test_pad_keeps_the_aspect_ratio():
    out = build_image_transform(40, resize="pad")(np.full((20, 40), 255, np.uint8))
    rows = out[0].amax(dim=1)
    assert int((rows > 0).sum()) == 20  # 20 image rows, the rest black padding


def test_evaluation_transform_is_deterministic():
    transform = build_image_transform(32)
    assert torch.equal(transform(_image()), transform(_image()))


def test_seeded_augmentation_repeats_and_differs_by_seed():
    def draws(seed):
        transform = build_image_transform(32, train=True, hflip=0.5, rotate_deg=30, seed=seed)
        return torch.stack([transform(_image()) for _ in range(4)])

    assert torch.equal(draws(1), draws(1))
    assert not torch.equal(draws(1), draws(2))


def test_hflip_with_probability_one_mirrors():
    image = np.zeros((8, 8), np.uint8)
    image[:, 0] = 255
    out = build_image_transform(8, train=True, hflip=1.0)(image)
    assert out[0, :, -1].min() == 255 and out[0, :, 0].max() == 0
