"""Read any PNG/JPEG (and what else Pillow decodes) into a uint8 array, or fail with one clear error.

Modes L, LA, RGB, RGBA, P, 1, I;16 and friends all arrive as 8-bit grayscale (or RGB): alpha is composited
onto black, palettes are expanded, and 16-bit / 32-bit / float images are stretched linearly from their own
minimum and maximum to 0..255 so that a 12-bit radiograph keeps its contrast instead of being clipped.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from radlab.core.errors import FileErrors, RadlabDataError, unreadable
from radlab.core.io.inputs import require_regular

ColourMode = Literal["L", "RGB"]

_WIDE_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F", "I;16S", "I;32", "I;32S"}
_PREMULTIPLIED = {"La", "RGBa"}
_STRAIGHT_ALPHA = {"LA", "RGBA", "PA"}


def read_image(path: str | Path, mode: ColourMode = "L") -> np.ndarray:
    """Decode `path` into a uint8 array: (H, W) for mode "L", (H, W, 3) for "RGB".

    Raises RadlabDataError naming the file for anything unreadable (missing, truncated, not an image,
    declared dimensions beyond Pillow's decompression-bomb limit).
    """
    path = Path(path)
    require_regular(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                opened.load()
                return to_uint8(ImageOps.exif_transpose(opened) or opened, mode)
    except FileErrors as error:
        raise unreadable(path, error, "an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RadlabDataError(path, f"image too large to decode safely ({exc})") from None
    except Image.UnidentifiedImageError:
        raise RadlabDataError(path, "not a recognised image format") from None
    except MemoryError:
        raise RadlabDataError(path, "not enough memory to decode this image") from None
    except Exception as exc:  # any decoder failure on untrusted bytes is a data error, never a crash
        raise RadlabDataError(path, f"cannot decode image: {exc}".rstrip()) from None


def to_uint8(img: Image.Image, mode: ColourMode = "L") -> np.ndarray:
    """Convert a decoded Pillow image of any mode to a uint8 array in `mode` ("L" or "RGB")."""
    if img.mode in _WIDE_MODES:
        gray = stretch_to_uint8(np.asarray(img))
        return gray if mode == "L" else np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in _PREMULTIPLIED:
        img = img.convert(img.mode[:-1])
    elif img.mode in _STRAIGHT_ALPHA:
        img = _composite_on_black(img)
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    if img.mode != mode:
        img = img.convert(mode)
    return np.asarray(img, dtype=np.uint8).copy()


def stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map the array's own [min, max] linearly onto [0, 255] (a constant image becomes all zeros)."""
    data = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if data.ndim == 3:
        data = data.mean(axis=2)
    if data.size == 0:
        return np.zeros(data.shape, dtype=np.uint8)
    low, high = float(data.min()), float(data.max())
    if high <= low:
        return np.zeros(data.shape, dtype=np.uint8)
    return np.rint((data - low) * (255.0 / (high - low))).astype(np.uint8)


def _composite_on_black(img: Image.Image) -> Image.Image:
    if img.mode == "PA":
        img = img.convert("RGBA")
    arr = np.asarray(img, dtype=np.uint16)
    colour, alpha = arr[..., :-1], arr[..., -1:]
    blended = ((colour * alpha + 127) // 255).astype(np.uint8)
    return Image.fromarray(blended[..., 0] if blended.shape[-1] == 1 else blended)
