"""`radlab inspect` over pydicom's whole bundled test-files folder, and on each kind of file."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
import pydicom.data
import pytest
from PIL import Image

from radlab.core.errors import RadlabDataError
from radlab.core.io.dicom import read_dicom_image
from radlab.core.io.inspect import inspect_file, iter_files
from tests.conftest import run_cli

BUNDLED = os.path.dirname(pydicom.data.get_testdata_files("CT_small.dcm")[0])


def _reason(entry: dict) -> str:
    return entry["error"].split(" (")[0].split(":")[0]


def test_every_bundled_file_is_described_and_agrees_with_the_training_loader():
    """Each pixel-bearing file decodes, or is refused with radlab's data error; inspect says the same."""
    entries = [inspect_file(path) for path in iter_files([BUNDLED])]
    for entry in entries:
        if entry["kind"] != "dicom":
            continue
        try:
            image = read_dicom_image(entry["path"])
        except RadlabDataError as error:
            assert "error" in entry and error.reason == entry["error"]
        else:
            assert "error" not in entry and list(image.shape) == entry["display_shape"]
    kinds = Counter(entry["kind"] for entry in entries)
    decoded = sum("error" not in entry for entry in entries)
    reasons = Counter(_reason(entry) for entry in entries if "error" in entry)
    # The list as of pydicom 3: 176 files, 167 DICOM, 89 decode; what the others are refused for:
    assert kinds["dicom"] + kinds["unknown"] == len(entries) and decoded >= 85
    assert reasons["holds no image"] >= 60  # structured reports, DICOMDIRs, RT plans...
    assert set(reasons) <= {
        "holds no image",
        "not an image, DICOM or .npy volume radlab knows",
        "not a DICOM file",
        "cannot decode pixel data",
        "declares an empty image",
        "invalid NumberOfFrames value '1A'",
    }


def test_each_kind_of_file(tmp_path):
    Image.fromarray(np.zeros((7, 9, 3), dtype=np.uint8)).save(tmp_path / "colour.png")
    np.save(tmp_path / "volume.npy", np.zeros((3, 4, 5), dtype=np.uint8))
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "notes.txt").write_text("x")
    got = {os.path.basename(e["path"]): e for e in map(inspect_file, iter_files([tmp_path]))}
    assert got["colour.png"] == {
        "path": str(tmp_path / "colour.png"),
        "kind": "image",
        "shape": [7, 9, 3],
        "dtype": "uint8",
    }
    assert got["volume.npy"]["shape"] == [3, 4, 5] and got["volume.npy"]["dtype"] == "uint8"
    assert "not a readable .npy array" in got["broken.npy"]["error"]
    assert got["notes.txt"]["kind"] == "unknown" and "error" in got["notes.txt"]


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm"])
def test_dicom_header_fields(name):
    (path,) = pydicom.data.get_testdata_files(name)
    entry = inspect_file(path)
    assert entry["kind"] == "dicom" and entry["photometric_interpretation"] == "MONOCHROME2"
    assert entry["rows"] == entry["shape"][0] and entry["modality"] in {"CT", "MR"}
    assert len(entry["rescale"]) == 2 and len(entry["window"]) == 2 and "transfer_syntax" in entry


def test_cli_prints_one_json_line_per_file(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 2, 2), dtype=np.uint8))
    (tmp_path / "b.png").write_bytes(b"not a png")
    result = run_cli("inspect", tmp_path, tmp_path / "missing.dcm")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [os.path.basename(e["path"]) for e in lines] == ["a.npy", "b.png", "missing.dcm"]
    assert "error" not in lines[0] and "error" in lines[1] and lines[2]["error"] == "no such file"
