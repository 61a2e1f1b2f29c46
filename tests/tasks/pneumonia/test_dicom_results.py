"""Pneumonia's DICOM results: serve's `prediction` as an SR of boxes (and overlays as Secondary Captures), and
`predict --dicom-out/--stow` writing one SR per image with exactly the submission's boxes."""

from __future__ import annotations

import os

import highdicom as hd
import numpy as np
import pydicom
import pytest

from radlab.core.explain.explanation import Explanation
from radlab.core.io.dicomweb import find_instances
from radlab.tasks.pneumonia.dicom_results import LUNG_OPACITY, dicom_results, prediction_of
from radlab.tasks.pneumonia.formats import TEST_IMAGES, read_submission
from tests.conftest import run_radlab


def _boxes(sr):
    groups = sr.content.get_planar_roi_measurement_groups()
    found = []
    for group in groups:
        assert group.finding_type == LUNG_OPACITY
        (x0, y0), _, (x1, y1) = group.roi.value[0], group.roi.value[1], group.roi.value[2]
        found.append((group.get_measurements()[0].value, x0, y0, x1 - x0, y1 - y0))
    return found


@pytest.mark.parametrize("boxes", [[], [(0.9, 10.0, 12.5, 30.0, 20.0), (0.3, 1.0, 2.0, 3.0, 4.0)]], ids=["none", "two"])
@pytest.mark.parametrize("pictures", [0, 1])
def test_serve_prediction_becomes_an_sr_and_overlays(tiny_pneumonia, tmp_path, boxes, pictures):
    source = sorted((tiny_pneumonia / TEST_IMAGES).glob("*.dcm"))[0]
    header = pydicom.dcmread(source, stop_before_pixels=True)
    prediction = prediction_of(np.array([b[1:] for b in boxes]).reshape(-1, 4), np.array([b[0] for b in boxes]))
    image = np.full((header.Rows, header.Columns, 3), 40, np.uint8)
    shown = [Explanation(source.stem, image, "boxes with scores")] * pictures
    datasets = dicom_results([source], prediction, shown)
    assert len(datasets) == 1 + pictures
    path = tmp_path / "sr.dcm"
    datasets[0].save_as(path, enforce_file_format=True)
    sr = hd.sr.srread(path)
    assert sr.StudyInstanceUID == header.StudyInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
    assert [item.ReferencedSOPInstanceUID for item in evidence] == [header.SOPInstanceUID]
    assert _boxes(sr) == boxes
    if not boxes:
        (group,) = sr.content.get_image_measurement_groups()
        assert group.finding_type == LUNG_OPACITY
    for capture in datasets[1:]:
        assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID == header.SOPInstanceUID
        assert (capture.pixel_array == 40).all()


def test_more_than_one_image_is_refused(tiny_pneumonia):
    sources = sorted((tiny_pneumonia / TEST_IMAGES).glob("*.dcm"))[:2]
    from radlab.core.errors import RadlabDataError

    with pytest.raises(RadlabDataError, match="exactly one DICOM"):
        dicom_results(sources, {"boxes": [], "prediction_string": ""})


def test_predict_writes_and_stows_one_sr_per_image_with_the_submission_boxes(
    tiny_pneumonia_run, tiny_pneumonia, tmp_path
):
    url = os.environ.get("RADLAB_ORTHANC_URL")
    stow = ["--stow", url] if url else []
    images = sorted((tiny_pneumonia / TEST_IMAGES).glob("*.dcm"))
    result = run_radlab(
        "pneumonia", "predict", tiny_pneumonia / TEST_IMAGES, tmp_path / "sub.csv", "--model", tiny_pneumonia_run,
        "--threshold", "0.0", "--dicom-out", tmp_path / "dicom", *stow,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{len(images)} DICOM results -> {tmp_path / 'dicom'}" in result.stderr + result.stdout
    submitted = read_submission(tmp_path / "sub.csv")
    written = sorted((tmp_path / "dicom").glob("sr-*.dcm"))
    assert len(written) == len(images)
    by_uid = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p.stem for p in images}
    for path in written:
        sr = hd.sr.srread(path)
        (item,) = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
        predicted = submitted[by_uid[item.ReferencedSOPInstanceUID]]
        order = np.argsort(-predicted.scores, kind="stable")
        expected = [(predicted.scores[i], *predicted.boxes[i]) for i in order]
        assert sorted(_boxes(sr)) == sorted(expected)
        if url:
            assert find_instances(url, SOPInstanceUID=str(sr.SOPInstanceUID))


def test_dicom_out_inside_the_input_folder_is_refused_before_predicting(tiny_pneumonia, tmp_path):
    folder = tiny_pneumonia / TEST_IMAGES
    result = run_radlab(
        "pneumonia", "predict", folder, tmp_path / "sub.csv", "--model", tmp_path / "no-run",
        "--dicom-out", folder / "results",
    )  # fmt: skip
    assert result.returncode == 2 and "inside the input" in result.stderr
    assert not (tmp_path / "sub.csv").exists() and not (folder / "results").exists()
