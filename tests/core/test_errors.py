"""What entry points turn errors into (one line, an exit code), and an interrupt that no reader can take for a
bad file."""

from __future__ import annotations

import errno
import signal

import pytest

from radlab.core.errors import Interrupted, RadlabConfigError, RadlabDataError, exit_code_of


def _raises(error: BaseException):
    def run() -> None:
        raise error

    return run


@pytest.mark.parametrize(
    ("run", "code", "line"),
    [
        (lambda: None, 0, ""),
        (_raises(RadlabDataError("in.csv", "no rows", 3)), 1, "error: in.csv:3: no rows"),
        (_raises(RadlabConfigError("bad value")), 2, "error: bad value"),
        (_raises(OSError(errno.ENOSPC, "No space left on device", "o")), 1, "error: o: No space left on device"),
        (_raises(OSError(errno.EROFS, "Read-only file system")), 1, "error: Read-only file system"),
        (_raises(Interrupted(signal.SIGTERM, "at epoch 3 of run", "continue with --resume")), 143,
         "interrupted (SIGTERM) at epoch 3 of run; continue with --resume"),
        (_raises(KeyboardInterrupt()), 130, "interrupted (SIGINT)"),
    ],
)  # fmt: skip
def test_an_entry_point_prints_one_line_and_the_exit_code(capsys, run, code, line):
    assert exit_code_of(run) == code
    assert capsys.readouterr().err.strip() == line


@pytest.mark.parametrize("reader", ["read_header", "read_dicom_image", "read_image", "read_volume"])
def test_an_interrupt_inside_a_reader_is_not_taken_for_a_bad_file(tmp_path, monkeypatch, reader):
    """A SIGTERM handler raises where the main thread is: inside a decoder whose `except Exception` turns any
    failure into "unreadable file" (the run then went on, and could exit 0)."""
    import numpy as np
    import pydicom
    from PIL import Image

    from radlab.core.io import dicom, images, volumes

    def interrupted(*args, **kwargs):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(pydicom, "dcmread", interrupted)
    monkeypatch.setattr(Image, "open", interrupted)
    monkeypatch.setattr(np, "load", interrupted)
    path = tmp_path / "x.bin"
    path.write_bytes(b"x" * 200)
    read = {"read_header": dicom.read_header, "read_dicom_image": dicom.read_dicom_image,
            "read_image": images.read_image, "read_volume": volumes.read_volume}[reader]  # fmt: skip
    with pytest.raises(Interrupted):
        read(path)
