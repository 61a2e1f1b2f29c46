"""Series (volume) transforms: per-series intensity scaling and one random affine shared by all slices."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import torch


def minmax_to_uint8(volume: np.ndarray) -> np.ndarray:
    """Stretch a series to 0..255 using its own minimum and maximum (MRNet's baseline preprocessing).

    A uint8 series goes through a 256-entry lookup table computed in float32, which gives the same bytes as
    stretching a float32 copy but needs no memory beyond the output.
    """
    low, high = float(volume.min()), float(volume.max())
    if high <= low:
        return np.zeros(volume.shape, dtype=np.uint8)
    scale = 255.0 / (high - low)
    if volume.dtype == np.uint8:
        table = np.rint((np.arange(256, dtype=np.float32) - low) * scale).clip(0, 255).astype(np.uint8)
        return np.asarray(table[volume])
    return np.rint((volume.astype(np.float32) - low) * scale).astype(np.uint8)


class VolumeTransform:
    """(S, H, W) uint8 series -> (S, 1, size, size) uint8 tensor; when training, one random rotation,
    shift and horizontal flip is drawn per series and applied identically to every slice."""

    def __init__(
        self,
        size: int,
        *,
        train: bool = False,
        rotate_deg: float = 0.0,
        shift_px: float = 0.0,
        reference_px: int = 256,
        hflip: float = 0.0,
        seed: int | None = None,
    ) -> None:
        steps: list[A.BasicTransform] = [A.Resize(size, size, interpolation=cv2.INTER_AREA)]
        if train and (rotate_deg or shift_px):
            shift = shift_px / reference_px
            steps.append(
                A.Affine(
                    rotate=(-rotate_deg, rotate_deg),
                    translate_percent=(-shift, shift),
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    p=1.0,
                )
            )
        if train and hflip:
            steps.append(A.HorizontalFlip(p=hflip))
        self.pipeline = A.Compose(steps, seed=seed)
        self.size = size

    def set_random_seed(self, seed: int | None) -> None:
        self.pipeline.set_random_seed(seed)

    def __call__(self, volume: np.ndarray) -> torch.Tensor:
        out = self.pipeline(volume=minmax_to_uint8(volume))["volume"]
        return torch.from_numpy(np.ascontiguousarray(out)).unsqueeze(1)
