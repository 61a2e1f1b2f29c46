"""A Dataset over image files that turns an unreadable file into a flagged sample instead of an exception.

Prediction and training both iterate such datasets; a bad file costs one warning, never the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from radlab.core.errors import RadlabDataError
from radlab.core.io.images import ColourMode, read_image


class ImageSample(TypedDict):
    index: int
    image: torch.Tensor
    error: str


class ImageFileDataset(Dataset[ImageSample]):
    """Items are {"index", "image" (uint8, C x H x W), "error" ("" when the file decoded)}.

    `transform` maps a decoded uint8 array to a uint8 tensor of `output_shape`; a file that cannot be read
    yields zeros of that shape and the reason in "error".
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        transform: Callable[[np.ndarray], torch.Tensor],
        output_shape: tuple[int, int, int],
        colour: ColourMode = "L",
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.transform = transform
        self.output_shape = output_shape
        self.colour = colour

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> ImageSample:
        try:
            image = self.transform(read_image(self.paths[index], self.colour))
            error = ""
        except RadlabDataError as exc:
            image = torch.zeros(self.output_shape, dtype=torch.uint8)
            error = str(exc)
        return {"index": index, "image": image, "error": error}
