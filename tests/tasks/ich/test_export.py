"""`radlab export` for RSNA ICH and `ich predict --engine`: the slice embedder in ONNX gives torch's
probabilities through the sequence model; int8 stays close; held-out series are chosen whole."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from radlab.core.config import read_yaml, validate_config
from radlab.core.infer.nncf import nncf_installed
from radlab.tasks.ich import IchConfig
from radlab.tasks.ich.data import fold_rows, read_training_table
from radlab.tasks.ich.predict import validation_series
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def exported(tiny_ich_run, tmp_path_factory):
    """One export for the module's tests (they only read it)."""
    run = tmp_path_factory.mktemp("ich-export") / "run"
    shutil.copytree(tiny_ich_run, run)
    result = run_cli("export", run, "--int8", "--calibration", "12")
    assert result.returncode == 0, result.stderr
    return run


def test_export_writes_the_slice_embedder_and_compares_engines_on_held_out_series(exported, tiny_ich):
    report = json.loads((exported / "export.json").read_text())
    nncf = ["slice/model.nncf.xml"] if nncf_installed() else []
    assert report["files"] == ["slice/model.onnx", "slice/model.int8.onnx", *nncf]
    assert report["calibration_images"] == 12
    config = validate_config(IchConfig, read_yaml(exported / "config.yaml", "run config"))
    table = read_training_table(tiny_ich)
    assert report["validation_slices"] == len(validation_series(table, fold_rows(table, config)[1]))
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
    assert abs(validation["onnx"]["weighted_log_loss_change"]) < 1e-4
    assert validation["int8"]["max_abs_prob_diff"] < 0.1


@pytest.mark.parametrize("limit", [1, 10, 40, 10_000])
def test_validation_takes_whole_series_up_to_the_limit(tiny_ich, limit):
    table = read_training_table(tiny_ich)
    rows = list(range(len(table.infos)))
    groups = table.series(rows, np.ones(len(rows), dtype=bool))
    chosen = validation_series(table, rows, limit)
    taken = 0  # chosen is whole series, a prefix of the held-out series in their stable order
    while taken < len(groups) and chosen[: sum(map(len, groups[: taken + 1]))] == [
        i for g in groups[: taken + 1] for i in g
    ]:
        taken += 1
    assert len(chosen) == sum(map(len, groups[:taken])) and taken >= 1
    assert len(chosen) <= limit or taken == 1  # one series even when it alone passes the limit
    assert taken == len(groups) or len(chosen) + len(groups[taken]) > limit  # it stopped only when full
