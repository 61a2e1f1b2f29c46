"""`radlab bench prep --task ich`: DICOM to the three-window stack at 480 px, the seeds' way against radlab's.

Reference (the seed solutions): pydicom's `pixel_array`, a float HU image, each window computed on its own
with `np.clip`, then the black-border crop and the resize. radlab: the loader training uses
(`load_windows`: one lookup table over the stored integer values gives all three windows). Both run in
this one process with OpenCV on one thread, so the ratio is per core.
"""

from __future__ import annotations

import platform
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
import torch

from radlab.core.bench import compare_interleaved, peak_rss_mb
from radlab.tasks.ich.data import load_windows
from radlab.tasks.ich.formats import TRAIN_IMAGES
from radlab.tasks.ich.synth import synthesize_ich

WINDOWS = ((40, 80), (80, 200), (40, 380))


def reference_windows(path: Path, size: int) -> np.ndarray:
    """The seeds' preprocessing of one slice, written plainly."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.float64)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    if int(ds.PixelRepresentation) == 0 and intercept > -100:
        pixels = pixels + 1000
        pixels[pixels >= 4096] -= 4096
        intercept = -1000.0
    hu = pixels * slope + intercept
    channels = []
    for centre, width in WINDOWS:
        low = centre - width / 2
        channels.append(np.rint(np.clip((hu - low) / width, 0, 1) * 255).astype(np.uint8))
    image = np.stack(channels, axis=-1)
    rows = np.flatnonzero(image.max(axis=2).any(axis=1))
    cols = np.flatnonzero(image.max(axis=2).any(axis=0))
    if len(rows) and len(cols):
        cropped = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        side = max(cropped.shape[:2])
        image = np.zeros((side, side, 3), dtype=np.uint8)
        image[: cropped.shape[0], : cropped.shape[1]] = cropped
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def bench_prep(images: int = 60, repeats: int = 3, size: int = 480, seed: int = 0) -> dict[str, Any]:
    """Slices per second of both ways on the same synthetic 512 px CT slices, and their largest difference."""
    with tempfile.TemporaryDirectory(prefix="radlab-bench-") as scratch:
        series = max(5, images // 10 + 1)
        synthesize_ich(scratch, series=series, seed=seed, size=512, test_fraction=0.2, workers=2)
        files = sorted((Path(scratch) / TRAIN_IMAGES).glob("*.dcm"))
        readable = []
        for path in files:
            try:
                load_windows(path, size)
                readable.append(path)
            except Exception:  # the synthetic set's deliberately corrupt slice
                continue
        chosen = readable[:images]
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            comparison = compare_interleaved(
                lambda: np.stack([reference_windows(p, size) for p in chosen]),
                lambda: np.stack([load_windows(p, size) for p in chosen]),
                items=len(chosen),
                repeats=repeats,
            )
        finally:
            cv2.setNumThreads(threads)
    difference = np.abs(comparison.reference_output.astype(int) - comparison.radlab_output.astype(int))
    return {
        "task": "ich",
        "what": f"{len(chosen)} CT slices (512 px, int16) to the 3-window stack at {size} px, one core",
        "reference_items_per_s": comparison.reference_items_per_s,
        "radlab_items_per_s": comparison.radlab_items_per_s,
        "speedup": comparison.speedup,
        "max_abs_grey_level_diff": int(difference.max()),
        "max_abs_prob_diff": float(difference.max()) / 255.0,
        "label_agreement": float(np.mean(difference <= 1)),
        "peak_rss_mb": peak_rss_mb(),
        "threads": 1,
        "device": f"cpu ({platform.processor() or platform.machine()})",
        "torch_threads": torch.get_num_threads(),
    }
