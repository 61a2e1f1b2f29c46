"""`radlab export` for MRNet and `mrnet predict --engine`: every unit's slice encoder in ONNX gives torch's
fused probabilities; int8 stays close; the run records where its training data lives."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from radlab.core.infer.nncf import nncf_installed
from radlab.tasks.mrnet.formats import PLANES
from radlab.tasks.mrnet.predict import calibration_slices
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def exported(tiny_mrnet_run, tmp_path_factory):
    """One export for the module's tests (they only read it)."""
    run = tmp_path_factory.mktemp("mrnet-export") / "run"
    shutil.copytree(tiny_mrnet_run, run)
    result = run_cli("export", run, "--int8", "--calibration", "12")
    assert result.returncode == 0, result.stderr
    return run


def test_export_writes_each_unit_and_compares_the_engines_on_the_valid_split(exported):
    report = json.loads((exported / "export.json").read_text())
    units = sorted(p.name for p in (exported / "units").iterdir())
    assert units == sorted(PLANES)  # the cpu-small preset trains one network per plane
    names = ("model.onnx", "model.int8.onnx", *(["model.nncf.xml"] if nncf_installed() else []))
    assert report["files"] == [f"units/{u}/{name}" for u in units for name in names]
    assert report["calibration_images"] == 12
    validation = report["validation"]
    from radlab.core.infer.openvino import openvino_installed

    assert list(validation) == [
        "torch",
        "onnx",
        "int8",
        *(["openvino", "openvino-int8"] if openvino_installed() else []),
        *(["openvino-nncf"] if nncf_installed() else []),
    ]
    assert validation["onnx"]["max_abs_prob_diff"] < 1e-4
    assert validation["onnx"]["Average_AUROC_change"] == pytest.approx(0.0, abs=1e-9)
    assert validation["int8"]["max_abs_prob_diff"] < 0.1


@pytest.mark.parametrize(("count", "batches"), [(3, [3]), (10, [8, 2])])
def test_calibration_draws_the_asked_number_of_slices(tiny_mrnet, count, batches):
    drawn = list(calibration_slices(tiny_mrnet, "axial", 32, count, seed=1))
    assert [len(b) for b in drawn] == batches
    assert all(b.dtype == np.float32 and b.shape[1:] == (1, 32, 32) and b.max() <= 255 for b in drawn)
    assert np.array_equal(
        np.concatenate(drawn), np.concatenate(list(calibration_slices(tiny_mrnet, "axial", 32, count, seed=1)))
    )


def test_export_without_recorded_data_asks_for_data_root(tiny_mrnet_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_mrnet_run, run)
    (run / "data.json").unlink()
    result = run_cli("export", run, "--int8")
    assert result.returncode == 1 and "pass --data-root" in result.stderr and "Traceback" not in result.stderr
