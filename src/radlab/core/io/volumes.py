"""Read `.npy` volumes safely: no pickles, the declared shape checked before any allocation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from radlab.core.errors import FileErrors, RadlabDataError, unreadable
from radlab.core.io.inputs import require_regular

MAX_VOXELS = 2**28


def read_volume(
    path: str | Path, ndim: int = 3, max_voxels: int = MAX_VOXELS, max_shape: Sequence[int] | None = None
) -> np.ndarray:
    """A uint8 array of `ndim` dimensions from a `.npy` file (other integer or float types are rejected).

    The header is read through a memory map, so a file that declares an absurd shape (more than `max_voxels`,
    or beyond `max_shape` in any dimension) fails here instead of allocating it; object arrays (pickles) are
    never loaded, FIFOs and devices never read.
    """
    path = Path(path)
    require_regular(path)
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileErrors as error:
        raise unreadable(path, error, "a .npy file") from None
    except Exception as exc:  # malformed headers raise many types; all are a bad file, never a crash
        raise RadlabDataError(path, f"not a readable .npy array ({exc})") from None
    if not isinstance(mapped, np.ndarray):
        raise RadlabDataError(path, "holds several arrays (.npz); expected one .npy volume")
    if mapped.ndim != ndim:
        raise RadlabDataError(path, f"expected a {ndim}-D volume, got shape {tuple(mapped.shape)}")
    if mapped.dtype != np.uint8:
        raise RadlabDataError(path, f"expected uint8 voxels, got {mapped.dtype}")
    too_big = max_shape is not None and any(n > limit for n, limit in zip(mapped.shape, max_shape, strict=True))
    if mapped.size > max_voxels or 0 in mapped.shape or too_big:
        bound = f" (at most {' x '.join(map(str, max_shape))})" if max_shape is not None else ""
        raise RadlabDataError(path, f"implausible shape {tuple(mapped.shape)}{bound}")
    try:
        return np.array(mapped)
    except MemoryError:
        raise RadlabDataError(path, "not enough memory to read this volume") from None
    except (OSError, ValueError) as exc:
        raise RadlabDataError(path, f"truncated .npy file ({exc})") from None
