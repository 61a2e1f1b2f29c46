"""`radlab export` for MURA and `predict --engine`: the ONNX engines give torch's answers."""

from __future__ import annotations

import json
import shutil

import numpy as np

from radlab.tasks.mura.formats import split_csvs
from tests.conftest import csv_rows, run_cli


def test_export_int8_then_predict_with_each_engine(tiny_mura, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    result = run_cli("export", run, "--int8", "--calibration", "16")
    assert result.returncode == 0, result.stderr
    assert (run / "model.onnx").is_file() and (run / "model.int8.onnx").is_file()
    report = json.loads((run / "export.json").read_text())
    assert report["files"] == ["model.onnx", "model.int8.onnx"] and report["calibration_images"] == 16
    validation = report["validation"]
    assert set(validation) == {"torch", "onnx", "int8"}
    assert validation["onnx"]["max_abs_prob_diff"] < 1e-4 and validation["onnx"]["kappa_change"] == 0.0
    assert validation["int8"]["max_abs_prob_diff"] < 0.05

    paths_csv, _ = split_csvs(tiny_mura, "valid")
    outputs = {}
    for engine in ("torch", "onnx", "int8"):
        out, probs = tmp_path / f"{engine}.csv", tmp_path / f"{engine}.probs.csv"
        result = run_cli(
            "mura", "predict", paths_csv, out, "--model", run, "--data-root", tiny_mura, "--engine", engine,
            "--probs", probs, "--workers", "0",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        outputs[engine] = np.array([float(row[1]) for row in csv_rows(probs)])
        assert [row[0] for row in csv_rows(out)] == [row[0] for row in csv_rows(tmp_path / "torch.csv")]
    assert np.abs(outputs["onnx"] - outputs["torch"]).max() < 1e-4
    assert np.abs(outputs["int8"] - outputs["torch"]).max() < 0.05


def test_engine_without_export_is_one_line(tiny_mura, tiny_run, tmp_path):
    paths_csv, _ = split_csvs(tiny_mura, "valid")
    result = run_cli("mura", "predict", paths_csv, tmp_path / "o.csv", "--model", tiny_run, "--engine", "onnx")
    assert result.returncode == 1 and "radlab export" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.csv").exists()
