import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radlab.core.errors import RadlabDataError
from radlab.core.io.images import read_image, stretch_to_uint8


def _save(tmp_path: Path, image: Image.Image, name: str = "img.png") -> Path:
    path = tmp_path / name
    image.save(path)
    return path


@pytest.mark.parametrize(
    ("mode", "array"),
    [
        ("L", np.full((5, 7), 200, np.uint8)),
        ("LA", np.dstack([np.full((5, 7), 200, np.uint8), np.full((5, 7), 255, np.uint8)])),
        ("RGB", np.full((5, 7, 3), 200, np.uint8)),
        ("RGBA", np.dstack([np.full((5, 7, 3), 200, np.uint8), np.full((5, 7), 255, np.uint8)])),
    ],
)
def test_modes_decode_to_8bit_gray(tmp_path, mode, array):
    path = _save(tmp_path, Image.fromarray(array, mode))
    gray = read_image(path)
    assert gray.dtype == np.uint8 and gray.shape == (5, 7)
    assert (gray == 200).all()
    assert read_image(path, "RGB").shape == (5, 7, 3)


@pytest.mark.parametrize("mode", ["P", "1", "I", "F", "I;16"])
def test_other_modes_decode(tmp_path, mode):
    base = Image.fromarray(np.tile(np.arange(0, 250, 25, dtype=np.uint8), (3, 1)), "L")
    wide = np.tile(np.arange(0, 2500, 250, dtype=np.uint16), (3, 1))
    image = Image.fromarray(wide) if mode == "I;16" else base.convert(mode)
    suffix = "tiff" if mode in ("F", "I") else "png"
    path = tmp_path / f"img.{suffix}"
    image.save(path)
    gray = read_image(path)
    assert gray.shape == (3, 10) and gray.dtype == np.uint8
    assert gray[0, 0] <= gray[0, -1]


def test_16bit_is_stretched_to_full_range_not_clipped(tmp_path):
    values = np.array([[1000, 2000, 3000]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    assert read_image(_save(tmp_path, image)).tolist() == [[0, 128, 255]]


def test_constant_16bit_image_is_black():
    assert stretch_to_uint8(np.full((2, 2), 777, np.uint16)).tolist() == [[0, 0], [0, 0]]


@pytest.mark.parametrize(("mode", "colour"), [("LA", (200,)), ("RGBA", (200, 200, 200))])
def test_alpha_is_composited_on_black(tmp_path, mode, colour):
    pixel = np.array([[[*colour, 128]]], dtype=np.uint8)
    path = _save(tmp_path, Image.fromarray(pixel, mode))
    assert read_image(path).tolist() == [[100]]  # (200 * 128 + 127) // 255


@pytest.mark.parametrize("size", [(1, 1), (7, 3000), (513, 2)])
def test_any_size(tmp_path, size):
    path = _save(tmp_path, Image.new("L", size, 9))
    assert read_image(path).shape == (size[1], size[0])


def test_jpeg(tmp_path):
    path = tmp_path / "x.jpg"
    Image.new("RGB", (16, 8), (90, 90, 90)).save(path, quality=95)
    assert abs(int(read_image(path).mean()) - 90) <= 2


def _file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _truncated_png(tmp_path: Path) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(buffer, "PNG")
    path = tmp_path / "truncated.png"
    path.write_bytes(buffer.getvalue()[:200])
    return path


def _bomb_png(tmp_path: Path) -> Path:
    """A valid PNG header declaring 100000 x 100000 pixels (no allocation should be attempted)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0))
    data = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p / "missing.png", "file not found"),
        (lambda p: _file(p / "empty.png", b""), "not a recognised image"),
        (lambda p: _file(p / "text.png", b"hello"), "not a recognised image"),
        (lambda p: p, "is a folder"),
        (_truncated_png, "truncated"),
        (_bomb_png, "too large"),
    ],
)
def test_bad_files_raise_one_data_error_naming_the_file(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(RadlabDataError) as caught:
        read_image(path)
    assert str(path) in str(caught.value)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)
