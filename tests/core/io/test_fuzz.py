"""Property tests for the readers of untrusted files: whatever the bytes, only radlab's data error escapes.

Each case starts from a valid file and truncates it, flips bytes, inserts junk or empties it (hypothesis,
derandomized so CI sees the same cases every run). Declared sizes beyond reason are refused before any
allocation.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom.data
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from radlab.core.errors import RadlabDataError
from radlab.core.io.dicom import read_dicom_image
from radlab.core.io.images import read_image
from radlab.core.io.volumes import read_volume

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutations(draw: st.DrawFn, seed: bytes) -> bytes:
    """A damaged copy of `seed`: truncated, bytes flipped, junk inserted, or empty."""
    data = bytearray(seed)
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "empty", "flip_header"]))
    if kind == "empty":
        return b""
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, max(0, len(data) - 1)))])
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        return bytes(data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:])
    limit = min(len(data), 512) if kind == "flip_header" else len(data)
    for _ in range(draw(st.integers(1, 16))):
        at = draw(st.integers(0, max(0, limit - 1)))
        data[at] = draw(st.integers(0, 255))
    return bytes(data)


def _only_data_errors(reader: Callable[[Path], object], data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"case{suffix}"
        path.write_bytes(data)
        try:
            reader(path)
        except RadlabDataError as error:
            assert error.path == str(path) and error.reason


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(24 * 32, dtype=np.uint16).reshape(24, 32).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 8, 8), dtype=np.uint8))
    return buffer.getvalue()


def _dicom(name: str) -> bytes:
    return Path(pydicom.data.get_testdata_files(name)[0]).read_bytes()


@FUZZ
@given(data=mutations(_png()))
def test_png_reader(data):
    _only_data_errors(read_image, data, ".png")


@FUZZ
@given(data=mutations(_jpeg()))
def test_jpeg_reader(data):
    _only_data_errors(lambda p: read_image(p, "RGB"), data, ".jpg")


@FUZZ
@given(data=mutations(_npy()))
def test_npy_reader(data):
    _only_data_errors(read_volume, data, ".npy")


@FUZZ
@given(data=mutations(_dicom("CT_small.dcm")))
def test_dicom_reader_uncompressed(data):
    _only_data_errors(read_dicom_image, data, ".dcm")


@FUZZ
@given(data=mutations(_dicom("SC_rgb_jpeg_dcmtk.dcm")))
def test_dicom_reader_jpeg(data):
    _only_data_errors(read_dicom_image, data, ".dcm")


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def _npy_declaring(shape: tuple[int, ...]) -> bytes:
    header = repr({"descr": "|u1", "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64


@pytest.mark.parametrize(
    ("reader", "data", "suffix", "reason"),
    [
        (read_image, _png_declaring(2**30, 2**30), ".png", "too large"),
        (read_volume, _npy_declaring((100_000, 100_000, 100_000)), ".npy", "npy"),
    ],
)
def test_absurd_declared_sizes_are_refused_without_allocating(reader, data, suffix, reason, tmp_path):
    path = tmp_path / f"huge{suffix}"
    path.write_bytes(data)
    with pytest.raises(RadlabDataError, match=reason):
        reader(path)


def test_dicom_declaring_a_huge_image_is_refused_before_decoding(tmp_path):
    ds = pydicom.dcmread(pydicom.data.get_testdata_files("CT_small.dcm")[0])
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 100
    ds.save_as(tmp_path / "huge.dcm")
    with pytest.raises(RadlabDataError, match="more than radlab decodes"):
        read_dicom_image(tmp_path / "huge.dcm")
