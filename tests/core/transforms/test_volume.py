import numpy as np
import torch

from radlab.core.transforms import VolumeTransform, minmax_to_uint8


def test_minmax_scales_each_series_to_the_full_range():
    assert minmax_to_uint8(np.array([[[10, 20], [30, 10]]], np.uint8)).tolist() == [[[0, 128], [255, 0]]]
    assert minmax_to_uint8(np.full((1, 2, 2), 7, np.uint8)).max() == 0


def test_one_draw_per_series_applied_to_every_slice():
    rng = np.random.default_rng(0)
    slice_ = rng.integers(0, 255, (40, 40), dtype=np.uint8)
    volume = np.stack([slice_] * 6)
    transform = VolumeTransform(32, train=True, rotate_deg=25, shift_px=25, hflip=0.5, seed=3)
    for _ in range(5):
        out = transform(volume)
        assert out.shape == (6, 1, 32, 32) and out.dtype == torch.uint8
        assert all(torch.equal(out[i], out[0]) for i in range(6))


def test_training_draws_differ_between_series_and_repeat_with_the_seed():
    volume = np.random.default_rng(1).integers(0, 255, (3, 40, 40), dtype=np.uint8)

    def draws(seed):
        transform = VolumeTransform(32, train=True, rotate_deg=25, shift_px=25, hflip=0.5, seed=seed)
        return torch.stack([transform(volume) for _ in range(3)])

    first = draws(1)
    assert torch.equal(first, draws(1))
    assert not torch.equal(first[0], first[1])
