"""Pictures of what a model saw: heat-maps blended over the original image, boxes with their scores."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw

from radlab.core.io.atomic import atomic_write_bytes


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[..., :3]


def resize_map(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 0..1 map (h, w) resized bilinearly to (height, width)."""
    resized = Image.fromarray(cam.astype(np.float32), mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized), 0.0, 1.0)


def map_to_original(cam: np.ndarray, height: int, width: int, size: int, resize: str = "stretch") -> np.ndarray:
    """A map over the model's size x size input, brought back onto the original (height, width) image.

    "stretch" inputs were resized directly; "pad" inputs kept the aspect ratio and were padded evenly to a
    square (albumentations' LongestMaxSize + PadIfNeeded), so the padding is cut away first.
    """
    if resize != "pad":
        return resize_map(cam, height, width)
    square = resize_map(cam, size, size)
    scale = size / max(height, width)
    inner_h, inner_w = round(height * scale), round(width * scale)
    top, left = (size - inner_h) // 2, (size - inner_w) // 2
    return resize_map(square[top : top + inner_h, left : left + inner_w], height, width)


def overlay_heatmap(image: np.ndarray, cam: np.ndarray, alpha: float = 0.4, colormap: str = "jet") -> np.ndarray:
    """The image (H, W) or (H, W, 3) uint8 with the map (any size, 0..1) blended on top, at the image's size."""
    base = _rgb(image).astype(np.float32)
    heat = resize_map(cam, base.shape[0], base.shape[1])
    colours = colormaps[colormap](heat)[..., :3] * 255.0
    return np.clip((1.0 - alpha) * base + alpha * colours, 0, 255).astype(np.uint8)


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    scores: Sequence[float] | None = None,
    colour: tuple[int, int, int] = (255, 64, 64),
    width: int = 3,
) -> np.ndarray:
    """Boxes (N, 4) as x0, y0, x1, y1 drawn on an RGB copy of the image, each labelled with its score."""
    canvas = Image.fromarray(_rgb(image).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=float).reshape(-1, 4)):
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
        if scores is not None:
            draw.text((x0 + 4, y0 + 2), f"{scores[k]:.2f}", fill=colour)
    return np.asarray(canvas)


def png_bytes(image: np.ndarray) -> bytes:
    """An image (H, W) or (H, W, 3) uint8 encoded as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a PNG atomically (a half-written picture never stands under its final name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, png_bytes(image))
    return path
