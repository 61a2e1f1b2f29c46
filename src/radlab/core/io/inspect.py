"""`radlab inspect`: what a file is, as one JSON-ready dict per file (or the reason it cannot be read).

DICOMs report their header (photometric interpretation, transfer syntax, modality, rescale, window) and
then whether the pixel data decodes, through the same reader training uses; images and volumes report
their decoded shape and type. Nothing here raises for a bad file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radlab.core.errors import RadlabDataError
from radlab.core.io.dicom import display_image, header_value, read_dicom, read_header, transfer_syntax_name
from radlab.core.io.images import read_image
from radlab.core.io.inputs import require_regular, walk_files

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}


def file_kind(path: Path) -> str:
    """ "dicom", "image", "volume" or "unknown", from the DICM magic, then the suffix."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return "volume"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        head = b""
    if suffix in {".dcm", ".dicom"} or head[128:132] == b"DICM":
        return "dicom"
    try:
        read_header(path)  # DICOM without preamble or suffix (DICOMDIR trees)
    except RadlabDataError:
        return "unknown"
    return "dicom"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and not isinstance(value, (bytes, dict))):
        return [_plain(v) for v in value]
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _dicom(path: Path) -> dict[str, Any]:
    ds = read_header(path)
    found: dict[str, Any] = {
        "transfer_syntax": transfer_syntax_name(ds),
        "modality": _plain(header_value(ds, "Modality")),
        "photometric_interpretation": _plain(header_value(ds, "PhotometricInterpretation")),
        "rows": _plain(header_value(ds, "Rows")),
        "columns": _plain(header_value(ds, "Columns")),
        "frames": _plain(header_value(ds, "NumberOfFrames", 1)),
        "bits_stored": _plain(header_value(ds, "BitsStored")),
        "pixel_representation": _plain(header_value(ds, "PixelRepresentation")),
        "rescale": [_plain(header_value(ds, "RescaleSlope")), _plain(header_value(ds, "RescaleIntercept"))],
        "window": [_plain(ds.get("WindowCenter")), _plain(ds.get("WindowWidth"))],
    }
    try:
        full, stored = read_dicom(path)
        image = display_image(full, stored, path)
        found.update(shape=list(stored.shape), dtype=str(stored.dtype), display_shape=list(image.shape))
    except RadlabDataError as error:
        found["error"] = error.reason
    return found


def _volume(path: Path) -> dict[str, Any]:
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # any malformed header
        raise RadlabDataError(path, f"not a readable .npy array ({exc})") from None
    return {"shape": list(mapped.shape), "dtype": str(mapped.dtype)}


def inspect_file(path: str | Path) -> dict[str, Any]:
    """{"path", "kind", ...what it holds..., or "error"}; never raises for a bad file."""
    path = Path(path)
    entry: dict[str, Any] = {"path": str(path), "kind": "unknown"}
    try:
        if path.is_dir():
            raise RadlabDataError(path, "is a folder")
        require_regular(path)
        if not path.is_file():
            raise RadlabDataError(path, "no such file")
        kind = entry["kind"] = file_kind(path)
        if kind == "dicom":
            entry.update(_dicom(path))
        elif kind == "image":
            image = read_image(path, "RGB" if _is_colour(path) else "L")
            entry.update(shape=list(image.shape), dtype=str(image.dtype))
        elif kind == "volume":
            entry.update(_volume(path))
        else:
            entry["error"] = "not an image, DICOM or .npy volume radlab knows"
    except RadlabDataError as error:
        entry["error"] = error.reason
    return entry


def _is_colour(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.mode in {"RGB", "RGBA", "P", "CMYK", "YCbCr"}
    except Exception:
        return False


def iter_files(paths: Sequence[str | Path]) -> Iterator[Path]:
    """Files as given, and every file under a given folder (sorted; FIFOs and devices too, to be reported)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from walk_files(path)
        else:
            yield path
