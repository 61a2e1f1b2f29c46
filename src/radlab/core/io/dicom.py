"""Read DICOM files robustly: every transfer syntax pydicom and the pylibjpeg plugins decode (JPEG Baseline,
JPEG Lossless, JPEG 2000, RLE, uncompressed), MONOCHROME1 inverted, rescale slope and intercept applied,
declared sizes checked before decoding, and any failure turned into one RadlabDataError naming the file.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.errors
import pydicom.multival
from pydicom.dataset import Dataset
from pydicom.pixels import apply_rescale, apply_voi_lut

from radlab.core.errors import FileErrors, RadlabDataError, unreadable
from radlab.core.io.images import stretch_to_uint8
from radlab.core.io.inputs import require_regular, walk_files

MAX_PIXELS = 2**28


def list_dicom_folder(folder: str | Path) -> list[Path]:
    """The `.dcm` files (any case) under a folder and its subfolders, sorted by path.

    A data error when it is not a folder, holds none, or holds two files of one name (a submission row is
    named by the file's stem, so two would collide).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RadlabDataError(folder, "not a folder of DICOM files")
    paths = [path for path in walk_files(folder) if path.suffix.lower() == ".dcm"]
    if not paths:
        raise RadlabDataError(folder, "holds no .dcm file")
    first: dict[str, Path] = {}
    for path in paths:
        seen = first.setdefault(path.stem, path)
        if seen is not path:
            raise RadlabDataError(path, f"has the same name as {seen}; each image needs its own ID")
    return paths


def read_header(path: str | Path) -> Dataset:
    """The DICOM header only (no pixel data), for metadata tables and size checks."""
    return _read(Path(path), stop_before_pixels=True)


def read_dicom(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[Dataset, np.ndarray]:
    """The dataset and its stored pixel values (first frame), decoded, MONOCHROME1 not yet inverted."""
    path = Path(path)
    ds = _read(path, stop_before_pixels=False)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise RadlabDataError(path, "holds no image (no PixelData)")
    rows, columns = int_tag(ds, "Rows", 0, path), int_tag(ds, "Columns", 0, path)
    frames = int_tag(ds, "NumberOfFrames", 1, path)
    if rows <= 0 or columns <= 0:
        raise RadlabDataError(path, f"declares an empty image ({rows} x {columns})")
    if rows * columns * max(frames, 1) > max_pixels:
        raise RadlabDataError(path, f"declares {rows} x {columns} x {frames} pixels, more than radlab decodes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array
    except MemoryError:
        raise RadlabDataError(path, "not enough memory to decode this image") from None
    except Exception as exc:  # decoders raise many types for corrupt or unsupported data
        syntax = transfer_syntax_name(ds)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RadlabDataError(path, f"cannot decode pixel data ({syntax}): {reason}") from None
    if frames > 1 and pixels.ndim >= 3 and pixels.shape[0] == frames:
        pixels = pixels[0]
    return ds, pixels


def rescale_of(ds: Dataset) -> tuple[float, float]:
    """(slope, intercept), 1 and 0 when absent; a value that is not a finite number is a data error naming the
    file (windowed, it would give an all-black or all-white image, or crash the loader)."""
    found = []
    for tag, default in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)):
        raw = header_value(ds, tag, default)
        try:
            value = float(raw) if raw not in (None, "") else default
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            where = getattr(ds, "filename", None) or "DICOM"
            raise RadlabDataError(where, f"{tag} is not a finite number ({str(raw).strip()!r})")
        found.append(value)
    return found[0], found[1]


def modality_values(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """Stored values -> modality units (HU for CT) with the rescale slope and intercept, as float32."""
    if pixels.ndim == 3:
        return pixels.astype(np.float32)
    slope, intercept = rescale_of(ds)
    try:
        return np.asarray(apply_rescale(pixels, ds), dtype=np.float32)
    except Exception:
        return pixels.astype(np.float32) * slope + intercept


def read_dicom_image(path: str | Path) -> np.ndarray:
    """A display-ready uint8 grayscale image: VOI LUT or window applied when the file has one, MONOCHROME1
    inverted (so bone is bright), 8-bit data kept as stored, wider data stretched to 0..255, colour to gray
    (pydicom already returns YBR data as RGB)."""
    path = Path(path)
    ds, pixels = read_dicom(path)
    return display_image(ds, pixels, path)


def display_image(ds: Dataset, pixels: np.ndarray, path: str | Path) -> np.ndarray:
    """read_dicom_image's conversion, for pixels already decoded by read_dicom."""
    try:
        return _to_display(ds, pixels)
    except RadlabDataError:
        raise
    except Exception as exc:
        raise RadlabDataError(path, f"cannot convert pixel data for display ({exc})") from None


def _to_display(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if pixels.ndim == 3:
        colour = pixels[..., :3].astype(np.float32)
        gray = colour @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return gray.round().clip(0, 255).astype(np.uint8) if pixels.dtype == np.uint8 else stretch_to_uint8(gray)
    if photometric == "MONOCHROME1":
        pixels = invert_stored(ds, pixels)
    if pixels.dtype == np.uint8 and not _has_voi(ds):
        return pixels.copy()
    values = modality_values(ds, pixels)
    if _has_voi(ds):
        try:
            windowed = np.asarray(apply_voi_lut(values, ds), dtype=np.float32)
        except Exception:
            windowed = values
        values = windowed
    return stretch_to_uint8(values)


def invert_stored(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """MONOCHROME1 -> MONOCHROME2: mirror the stored values within their representable range."""
    bits = int(ds.get("BitsStored", pixels.dtype.itemsize * 8) or 8)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        low, high = 0, 2**bits - 1
    return (low + high - pixels.astype(np.int64)).astype(pixels.dtype)


def header_value(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """A tag's value as plain Python (first value of a multi-valued element); pydicom's complaints about
    non-conformant values (real challenge files have many) are not repeated for every file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = ds.get(keyword, default)
    if isinstance(value, pydicom.multival.MultiValue):
        return value[0] if len(value) else default
    return value


def int_tag(ds: Dataset, keyword: str, default: int, path: Path) -> int:
    """An integer tag, or a data error naming the file when its value is not an integer."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ds.get(keyword, default)
            return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise RadlabDataError(path, f"invalid {keyword} value {ds.get(keyword)!r}") from None
    except Exception as exc:
        raise RadlabDataError(path, f"unreadable {keyword} ({exc})") from None


def _read_without_preamble(path: Path, stop_before_pixels: bool) -> Dataset:
    """Some writers omit the 128-byte preamble and file meta; accept such a file when it holds an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
            if "Rows" not in ds or "Columns" not in ds:
                raise ValueError("no image tags")
            return ds if stop_before_pixels else pydicom.dcmread(path, force=True)
    except Exception:
        raise RadlabDataError(path, "not a DICOM file (no DICM preamble, no image tags)") from None


def _has_voi(ds: Dataset) -> bool:
    return "WindowCenter" in ds or "VOILUTSequence" in ds


def transfer_syntax_name(ds: Dataset) -> str:
    uid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return getattr(uid, "name", str(uid)) if uid else "unknown transfer syntax"


def _read(path: Path, stop_before_pixels: bool) -> Dataset:
    require_regular(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except FileErrors as error:
        raise unreadable(path, error, "a DICOM file") from None
    except pydicom.errors.InvalidDicomError:
        return _read_without_preamble(path, stop_before_pixels)
    except MemoryError:
        raise RadlabDataError(path, "not enough memory to read this file") from None
    except Exception as exc:  # truncated or corrupt headers raise many types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RadlabDataError(path, f"unreadable DICOM ({reason})") from None
