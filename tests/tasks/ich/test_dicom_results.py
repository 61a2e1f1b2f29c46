"""ICH's DICOM results: serve's `prediction` as one SR per study holding each slice's six probabilities (and
heat-maps as Secondary Captures), and `predict --dicom-out/--stow` writing exactly the submission's numbers."""

from __future__ import annotations

import os
from collections import defaultdict

import highdicom as hd
import numpy as np
import pydicom
import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.explain.explanation import Explanation
from radlab.core.io.dicomweb import find_instances
from radlab.tasks.ich.dicom_results import CONCEPTS, dicom_results, prediction_of
from radlab.tasks.ich.formats import SUBTYPES, TEST_IMAGES, TRAIN_IMAGES, read_submission
from tests.conftest import run_radlab

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # the challenge's `ID_...` UIDs


def _headers(paths):
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]


def _probabilities(sr):
    """SOPInstanceUID -> {subtype: probability} from an SR's per-image groups."""
    names = {concept: name for name, concept in CONCEPTS.items()}
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for group in sr.content.get_image_measurement_groups():
        uid = group.source_images[0].referenced_sop_instance_uid
        found[uid][names[group.finding_type]] = group.get_measurements()[0].value
    return dict(found)


def _evidence(sr):
    return sorted(
        item.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    )


def _two_studies(root, per_study=3):
    """`per_study` readable slices of each of two training series (of different studies)."""
    by_study = defaultdict(list)
    for path in sorted((root / TRAIN_IMAGES).glob("*.dcm")):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        by_study[ds.StudyInstanceUID].append(path)
    studies = [paths[:per_study] for paths in by_study.values() if len(paths) >= per_study]
    return [p for paths in studies[:2] for p in paths]


@pytest.mark.parametrize("pictures", [0, 2])
def test_serve_prediction_becomes_one_sr_per_study(tiny_ich, tmp_path, pictures):
    sources = _two_studies(tiny_ich)
    headers = _headers(sources)
    probs = np.random.default_rng(1).random((len(sources), 6)).round(6)
    prediction = prediction_of([h.SOPInstanceUID for h in headers], probs)
    shown = [
        Explanation(f"{sources[k].stem}.any", np.zeros((headers[k].Rows, headers[k].Columns, 3), np.uint8), "cam")
        for k in (0, len(sources) - 1)
    ][:pictures]
    datasets = dicom_results(sources, prediction, shown)
    assert len(datasets) == 2 + pictures
    expected = {h.SOPInstanceUID: dict(zip(SUBTYPES, row, strict=True)) for h, row in zip(headers, probs, strict=True)}
    seen = {}
    for k, report in enumerate(datasets[:2]):
        path = tmp_path / f"sr{k}.dcm"
        report.save_as(path, enforce_file_format=True)
        sr = hd.sr.srread(path)
        found = _probabilities(sr)
        assert _evidence(sr) == sorted(found)
        assert {h.StudyInstanceUID for h in headers if h.SOPInstanceUID in found} == {sr.StudyInstanceUID}
        seen.update(found)
    assert seen == expected
    for capture, k in zip(datasets[2:], (0, len(sources) - 1)[:pictures], strict=True):
        assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID == headers[k].SOPInstanceUID
        assert capture.StudyInstanceUID == headers[k].StudyInstanceUID


def test_a_prediction_for_an_unknown_slice_is_one_line(tiny_ich):
    sources = _two_studies(tiny_ich)[:1]
    with pytest.raises(RadlabDataError, match="ID_nope: is not the SOPInstanceUID"):
        dicom_results(sources, prediction_of(["ID_nope"], np.zeros((1, 6))))


def test_predict_writes_and_stows_one_sr_per_study_with_the_submission_numbers(tiny_ich_run, tiny_ich, tmp_path):
    url = os.environ.get("RADLAB_ORTHANC_URL")
    stow = ["--stow", url] if url else []
    out = tmp_path / "dicom"
    result = run_radlab(
        "ich", "predict", tiny_ich / TEST_IMAGES, tmp_path / "sub.csv", "--model", tiny_ich_run, "--dicom-out", out,
        *stow,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    images, probs = read_submission(tmp_path / "sub.csv")
    studies = {pydicom.dcmread(tiny_ich / TEST_IMAGES / f"{i}.dcm").StudyInstanceUID for i in images}
    written = sorted(out.glob("sr-*.dcm"))
    assert len(written) == len(studies)
    seen = {}
    for path in written:
        sr = hd.sr.srread(path)
        seen.update(_probabilities(sr))
        if url:
            assert find_instances(url, SOPInstanceUID=str(sr.SOPInstanceUID))
    assert seen == {i: dict(zip(SUBTYPES, row, strict=True)) for i, row in zip(images, probs, strict=True)}
