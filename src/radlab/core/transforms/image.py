"""Resize and augment 2-D images with albumentations; output stays uint8 so workers ship 4x fewer bytes.

Normalisation (mean / std) happens inside the model, on the batch, so predict, export and CAM share it.
"""

from __future__ import annotations

from typing import Literal

import albumentations as A
import cv2
import numpy as np
import torch
import torch.utils.data

ResizeMode = Literal["stretch", "pad"]


class ImageTransform:
    """A seeded albumentations pipeline: uint8 (H, W[, C]) array -> uint8 tensor (C, H, W)."""

    def __init__(self, pipeline: A.Compose, size: int, channels: int) -> None:
        self.pipeline = pipeline
        self.size = size
        self.channels = channels

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def set_random_seed(self, seed: int | None) -> None:
        """Reseed every random step (called once per DataLoader worker)."""
        self.pipeline.set_random_seed(seed)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        out = self.pipeline(image=image)["image"]
        if out.ndim == 2:
            out = out[:, :, None]
        if out.shape[2] != self.channels:
            out = np.repeat(out[:, :, :1], self.channels, axis=2) if self.channels == 3 else out[:, :, :1]
        return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


def build_image_transform(
    size: int,
    *,
    train: bool = False,
    hflip: float = 0.0,
    rotate_deg: float = 0.0,
    resize: ResizeMode = "stretch",
    channels: int = 1,
    seed: int | None = None,
) -> ImageTransform:
    """Resize to `size` x `size` ("stretch" as the MURA paper, or "pad": keep aspect, pad with black),
    then, when `train`, a horizontal flip with probability `hflip` and a rotation uniform in
    +-`rotate_deg`."""
    steps: list[A.BasicTransform] = []
    if resize == "pad":
        steps += [
            A.LongestMaxSize(max_size=size, interpolation=cv2.INTER_AREA),
            A.PadIfNeeded(size, size, border_mode=cv2.BORDER_CONSTANT, fill=0),
        ]
    else:
        steps.append(A.Resize(size, size, interpolation=cv2.INTER_AREA))
    if train and hflip > 0:
        steps.append(A.HorizontalFlip(p=hflip))
    if train and rotate_deg > 0:
        steps.append(A.Rotate(limit=rotate_deg, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0))
    return ImageTransform(A.Compose(steps, seed=seed), size, channels)


def seed_worker_transforms(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: give each worker's transform its own seed, derived from torch's
    per-worker seed (itself derived from the run's seed), so workers do not repeat each other's draws."""
    info = torch.utils.data.get_worker_info()
    if info is None:
        return
    reseed = getattr(getattr(info.dataset, "transform", None), "set_random_seed", None)
    if callable(reseed):
        reseed(int(info.seed % 2**32))
