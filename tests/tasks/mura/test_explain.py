"""`radlab explain mura`: a CAM per radiograph at its original size; bad files are named and skipped."""

from __future__ import annotations

import json

import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.io.images import read_image
from radlab.tasks.mura.views import explain
from tests.conftest import run_cli


def _study(tiny_mura):
    return sorted(tiny_mura.glob("MURA-v1.1/valid/XR_*/*/*/"))[0]


def test_each_radiograph_gets_a_cam_at_its_original_size(tiny_mura, tiny_run):
    study = _study(tiny_mura)
    images = sorted(study.glob("*.png"))
    explanations = explain(study, tiny_run)
    assert [e.name for e in explanations] == [p.stem for p in images]
    for item, path in zip(explanations, images, strict=True):
        assert item.image.shape == (*read_image(path).shape[:2], 3)
        assert 0.0 < item.details["p_abnormal"] < 1.0 and item.details["method"] == "cam"


def test_cli_writes_pictures_and_index_and_skips_a_corrupt_file(tiny_mura, tiny_run, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    source = sorted(_study(tiny_mura).glob("*.png"))[0]
    (study / "image1.png").write_bytes(source.read_bytes())
    (study / "image2.png").write_bytes(b"\x89PNG broken")
    result = run_cli("explain", "mura", study, "--model", tiny_run, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "image2.png" in result.stderr and "Traceback" not in result.stderr
    index = json.loads((tmp_path / "out" / "explanations.json").read_text())
    assert [entry["file"] for entry in index] == ["image1.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["explanations.json", "image1.png"]


def test_missing_input_is_one_line_and_exit_1(tiny_run, tmp_path):
    result = run_cli("explain", "mura", tmp_path / "nope.png", "--model", tiny_run, "--out", tmp_path / "out")
    assert result.returncode == 1 and "nope.png" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(RadlabDataError):
        explain(tmp_path / "nope.png", tiny_run)
    assert not (tmp_path / "out" / "explanations.json").exists()
