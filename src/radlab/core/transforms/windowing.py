"""CT windowing: stored values -> Hounsfield units -> a stack of display windows, in one vectorised pass.

- HU = slope * stored + intercept.
- The RSNA ICH pixel-representation quirk: some files store HU wrapped as unsigned 12-bit values with an
  intercept near 0. The fix (add 1000, wrap at 4096, intercept -1000) is applied when the quirk is detected
  (PixelRepresentation 0 and intercept > -100), or always / never as asked.
- Windows clip to [c - w/2, c + w/2] and scale to [0, 1]; the ICH recipe stacks brain (40/80), subdural
  (80/200) and soft tissue (40/380). For integer stored values the stack comes from a lookup table indexed by
  the stored value, so each pixel costs one gather.
- An optional crop removes the black border and pastes the head top-left into a square, as in the recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydicom.dataset import Dataset

from radlab.core.io.dicom import header_value, rescale_of

FixMode = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class Window:
    center: float
    width: float

    @property
    def low(self) -> float:
        return self.center - self.width / 2


BRAIN = Window(40, 80)
SUBDURAL = Window(80, 200)
SOFT_TISSUE = Window(40, 380)
ICH_WINDOWS = (BRAIN, SUBDURAL, SOFT_TISSUE)


def needs_pixel_representation_fix(ds: Dataset) -> bool:
    """The quirk: unsigned stored values with an intercept above -100."""
    _, intercept = rescale_of(ds)
    return int(header_value(ds, "PixelRepresentation", 0) or 0) == 0 and intercept > -100


def fix_pixel_representation(stored: np.ndarray) -> np.ndarray:
    """Stored values + 1000, wrapped at 4096 (to be used with intercept -1000)."""
    shifted = stored.astype(np.int32) + 1000
    shifted[shifted >= 4096] -= 4096
    return shifted


def dicom_window(ds: Dataset) -> Window | None:
    """The file's own window (the first of multi-valued WindowCenter / WindowWidth), if it has one."""
    center, width = header_value(ds, "WindowCenter"), header_value(ds, "WindowWidth")
    try:
        return Window(float(center), float(width)) if center is not None and width is not None else None
    except (TypeError, ValueError):
        return None


def stored_and_rescale(ds: Dataset, stored: np.ndarray, fix: FixMode = "auto") -> tuple[np.ndarray, float, float]:
    """(stored values, slope, intercept) with the pixel-representation fix applied when asked or detected."""
    slope, intercept = rescale_of(ds)
    if fix == "always" or (fix == "auto" and needs_pixel_representation_fix(ds)):
        return fix_pixel_representation(stored), slope, -1000.0
    return stored, slope, intercept


def hounsfield(ds: Dataset, stored: np.ndarray, fix: FixMode = "auto") -> np.ndarray:
    """Stored values -> HU (float32)."""
    values, slope, intercept = stored_and_rescale(ds, stored, fix)
    return values.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def window_stack(
    stored: np.ndarray,
    slope: float,
    intercept: float,
    windows: Sequence[Window] = ICH_WINDOWS,
    dtype: Literal["uint8", "float32"] = "uint8",
) -> np.ndarray:
    """(H, W) stored values -> (H, W, len(windows)) windowed channels, uint8 0..255 or float 0..1."""
    if np.issubdtype(stored.dtype, np.integer) and stored.size > 4096:
        low, high = int(stored.min()), int(stored.max())
        if high - low < 1 << 20:
            table = _windows(np.arange(low, high + 1, dtype=np.float64) * slope + intercept, windows, dtype)
            return table[stored.astype(np.int64) - low]
    return _windows(stored.astype(np.float64) * slope + intercept, windows, dtype)


def _windows(hu: np.ndarray, windows: Sequence[Window], dtype: str) -> np.ndarray:
    lows = np.array([w.low for w in windows])
    widths = np.array([w.width for w in windows])
    scaled = np.clip((hu[..., None] - lows) / widths, 0.0, 1.0)
    if dtype == "float32":
        return scaled.astype(np.float32)
    return np.rint(scaled * 255.0).astype(np.uint8)


def border_box(image: np.ndarray, threshold: int = 0) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), bottom and right exclusive, of the rows and columns holding any value above
    `threshold`; None for an all-black image."""
    content = image.max(axis=2) if image.ndim == 3 else image
    rows = np.flatnonzero((content > threshold).any(axis=1))
    cols = np.flatnonzero((content > threshold).any(axis=0))
    if len(rows) == 0 or len(cols) == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def crop_black_border(image: np.ndarray, threshold: int = 0) -> np.ndarray:
    """Keep the rows and columns holding any value above `threshold` and paste them top-left into a black
    square whose side is the longer one (the aspect ratio is kept). An all-black image is returned as is."""
    box = border_box(image, threshold)
    if box is None:
        return image
    top, bottom, left, right = box
    cropped = image[top:bottom, left:right]
    side = max(cropped.shape[:2])
    square = np.zeros((side, side, *image.shape[2:]), dtype=image.dtype)
    square[: cropped.shape[0], : cropped.shape[1]] = cropped
    return square


def uncrop_map(square_map: np.ndarray, box: tuple[int, int, int, int] | None, shape: tuple[int, int]) -> np.ndarray:
    """A map over crop_black_border's square (any resolution) placed back on the original image's grid."""
    from PIL import Image

    def resized(values: np.ndarray, height: int, width: int) -> np.ndarray:
        image = Image.fromarray(values.astype(np.float32), mode="F")
        return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))

    if box is None:
        return resized(square_map, *shape)
    top, bottom, left, right = box
    side = max(bottom - top, right - left)
    square = resized(square_map, side, side)
    out = np.zeros(shape, dtype=np.float32)
    out[top:bottom, left:right] = square[: bottom - top, : right - left]
    return out


def windowed_square(
    stored: np.ndarray,
    slope: float,
    intercept: float,
    windows: Sequence[Window] = ICH_WINDOWS,
    crop: bool = True,
) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """`crop_black_border(window_stack(...))` (uint8) and the border box, computed the fast way: the box is
    found on the stored values (a pixel is black in every window below one stored value, since windows
    rise with HU), only the head is windowed, and all windows come from one packed 32-bit lookup table.

    Falls back to the plain composition where that shortcut does not hold (non-integer data, a falling
    slope, a huge value range)."""
    if not np.issubdtype(stored.dtype, np.integer) or stored.ndim != 2 or slope <= 0 or stored.size == 0:
        return _plain_square(stored, slope, intercept, windows, crop)
    low, high = int(stored.min()), int(stored.max())
    if high - low >= 1 << 20:
        return _plain_square(stored, slope, intercept, windows, crop)
    table = _windows(np.arange(low, high + 1, dtype=np.float64) * slope + intercept, windows, "uint8")
    box = None
    if crop:
        lit = np.flatnonzero(table.any(axis=1))
        if len(lit) == 0:
            return table[stored.astype(np.int64) - low], None
        threshold = low + int(lit[0])
        content = stored >= threshold
        rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
        box = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
        stored = stored[box[0] : box[1], box[2] : box[3]]
    packed = np.zeros(len(table), dtype=np.uint32)
    for channel in range(table.shape[1]):
        packed |= table[:, channel].astype(np.uint32) << np.uint32(8 * channel)
    index = stored.astype(np.int32, copy=False) - np.int32(low)
    looked_up = packed[index].view(np.uint8).reshape(*stored.shape, 4)[..., : table.shape[1]]
    if not crop:
        return np.ascontiguousarray(looked_up), None
    side = max(looked_up.shape[:2])
    square = np.zeros((side, side, table.shape[1]), dtype=np.uint8)
    square[: looked_up.shape[0], : looked_up.shape[1]] = looked_up
    return square, box


def _plain_square(stored, slope, intercept, windows, crop):
    stack = window_stack(stored, slope, intercept, windows)
    return (crop_black_border(stack), border_box(stack)) if crop else (stack, None)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Area-averaging resize to size x size (cv2; keeps the channel axis)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    out = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return out if out.ndim == image.ndim else out[..., None]
