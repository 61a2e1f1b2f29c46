"""MRNet's report and explain: fused case table, per-plane AUROC table, the max slice with its CAM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.metrics import roc_auc
from radlab.core.report import CASES_FILE, read_case_table
from radlab.tasks.mrnet.formats import PLANES, TASKS
from radlab.tasks.mrnet.views import explain, plane_of_path, sections


def test_case_table_gives_the_official_validation_aurocs(tiny_mrnet_run):
    table = read_case_table(tiny_mrnet_run / "valid_predictions.csv")
    valid = json.loads((tiny_mrnet_run / "metrics.json").read_text())["valid"]
    assert table.labels == list(TASKS)
    for k, key in enumerate(("Abnormal_AUROC", "ACL_AUROC", "Meniscus_AUROC")):
        expected = valid[key]
        got = roc_auc(table.truth[:, k], table.probs[:, k])
        assert (expected is None and np.isnan(got)) or got == pytest.approx(expected, abs=1e-6)


def test_sections_hold_the_plane_table_and_one_gallery_per_task(tiny_mrnet_run):
    run = RunDir(tiny_mrnet_run)
    found = sections(run, run.read_json("metrics.json"), read_case_table(run.file(CASES_FILE)))
    titles = [section.title for section in found]
    assert titles[0] == "AUROC per task and plane (validation)"
    assert sum(title.startswith("Gallery: ") for title in titles) == len(TASKS)


def test_explain_shows_one_slice_per_task_at_the_series_size(tiny_mrnet, tiny_mrnet_run):
    series = sorted(tiny_mrnet.glob("MRNet-v1.0/valid/sagittal/*.npy"))[0]
    volume = np.load(series)
    explanations = explain(series, tiny_mrnet_run)
    assert [e.details["task"] for e in explanations] == list(TASKS)
    for item in explanations:
        assert item.image.shape == (*volume.shape[1:], 3)
        assert 0 <= item.details["slice"] < volume.shape[0] and item.details["plane"] == "sagittal"


@pytest.mark.parametrize(("parts", "plane"), [(("valid", "axial", "0001.npy"), "axial"), (("x", "0001.npy"), None)])
def test_plane_comes_from_the_folder(tmp_path, parts, plane):
    path = tmp_path.joinpath(*parts)
    if plane is None:
        with pytest.raises(RadlabDataError, match=", ".join(PLANES)):
            plane_of_path(path)
    else:
        assert plane_of_path(path) == plane
