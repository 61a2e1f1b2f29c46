"""ICH's report and explain: the case table of the sequence model, CAMs on the slice's own grid."""

from __future__ import annotations

import json

import pytest

from radlab.core.engine.run_dir import RunDir
from radlab.core.io.dicom import read_dicom
from radlab.core.report import read_case_table
from radlab.tasks.ich.formats import SUBTYPES, TRAIN_IMAGES
from radlab.tasks.ich.views import explain, sections


def test_case_table_matches_the_validation_scores(tiny_ich_run):
    from radlab.tasks.ich.evaluate import scores

    table = read_case_table(tiny_ich_run / "valid_predictions.csv")
    metrics = json.loads((tiny_ich_run / "metrics.json").read_text())
    assert table.labels == list(SUBTYPES) and len(table.cases) == metrics["validation_images"]
    got = scores(table.truth, table.probs)["weighted_log_loss"]
    assert got == pytest.approx(metrics["sequence"]["weighted_log_loss"], abs=1e-5)  # probabilities kept to 6 digits
    assert all(path.endswith(".dcm") for path in table.inputs)


def test_sections_compare_both_stages_per_subtype(tiny_ich_run):
    metrics = json.loads((tiny_ich_run / "metrics.json").read_text())
    cases = read_case_table(tiny_ich_run / "valid_predictions.csv")
    found = {section.title: section.body for section in sections(RunDir(tiny_ich_run), metrics, cases)}
    table = found["Log loss per subtype (validation)"]
    assert all(f"<td>{name}</td>" in table for name in ("weighted", *SUBTYPES))
    assert "Gallery: any, with what the model looked at" in found
    left_out = metrics["skipped_files"] + metrics["unreadable_validation_images"]
    assert ("Files left out" in found) == bool(left_out)


def test_explain_maps_back_onto_the_original_slice(tiny_ich, tiny_ich_run):
    folder = tiny_ich / TRAIN_IMAGES
    paths = sorted(folder.glob("*.dcm"))[:3]
    for path in paths:
        (item,) = explain(path, tiny_ich_run)
        _, stored = read_dicom(path)
        assert item.image.shape == (*stored.shape, 3)
        assert item.details["shown"] in SUBTYPES[:5]
        assert set(item.details["slice_cnn"]) == set(SUBTYPES)
