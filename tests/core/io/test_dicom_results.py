"""DICOM results: the SR reads back with pydicom and highdicom, references exactly its sources and carries the
boxes and probabilities exactly; the Secondary Capture keeps its pixels; bad sources and folders are one line."""

from __future__ import annotations

import copy

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from radlab.core.errors import RadlabConfigError, RadlabDataError
from radlab.core.io.dicom_outputs import check_results_folder
from radlab.core.io.dicom_results import (
    PROBABILITY_UNIT,
    SCHEME,
    Finding,
    patient_orientation,
    read_sources,
    secondary_capture,
    structured_report,
    write_datasets,
)

# pydicom warns on reading the challenge's `ID_...` UIDs back (radlab keeps them as they are).
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")

OPACITY = Code("opacity", SCHEME, "Opacity")
BLEED = Code("bleed", SCHEME, "Bleed")


def _slices(folder, count=3, challenge_uids=False):
    """`count` CT slices of one study (pydicom's CT_small with new instance UIDs); `challenge_uids` gives them
    RSNA ICH's `ID_...` UIDs and no PatientName, as the challenge's files."""
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    paths = []
    for k in range(count):
        ds = copy.deepcopy(base)
        uid = f"ID_{k:09x}" if challenge_uids else pydicom.uid.generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        if challenge_uids:
            ds.StudyInstanceUID, ds.SeriesInstanceUID = "ID_study", "ID_series"
            del ds.PatientName
        paths.append(folder / f"slice{k}.dcm")
        ds.save_as(paths[-1])
    return paths


def _evidence_uids(sr):
    return [
        (item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID)
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    ]


BOXES = [(10.0, 20.0, 30.0, 40.0, 0.91), (0.5, 1.5, 2.25, 3.75, 0.125)]


@pytest.mark.parametrize("challenge_uids", [False, True], ids=["standard-uids", "challenge-uids"])
@pytest.mark.parametrize(
    ("boxes", "image_probabilities"),
    [(BOXES, []), ([], [0.25, 0.5, 0.75]), (BOXES[:1], [0.0, 1.0, 0.3333]), ([], [])],
    ids=["boxes", "per-slice", "both", "nothing-found"],
)
def test_structured_report_references_the_sources_and_carries_the_numbers(
    tmp_path, boxes, image_probabilities, challenge_uids
):
    paths = _slices(tmp_path, challenge_uids=challenge_uids)
    sources = read_sources(paths)
    findings = [Finding(sources[0], OPACITY, p, (x, y, w, h)) for x, y, w, h, p in boxes]
    findings += [Finding(s, BLEED, p) for s, p in zip(sources, image_probabilities, strict=False)]
    sr = structured_report(
        sources, findings, title="radlab test", algorithm="radlab test", version="1.2", absent=OPACITY
    )
    (path,) = write_datasets(tmp_path / "out", [sr])
    assert path.name == f"sr-{sr.SOPInstanceUID}.dcm"

    raw = pydicom.dcmread(path)
    assert raw.Modality == "SR" and raw.StudyInstanceUID == sources[0].StudyInstanceUID
    assert raw.PatientID == sources[0].PatientID
    assert raw.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert raw.SOPInstanceUID not in {s.SOPInstanceUID for s in sources}
    back = hd.sr.srread(path)
    assert isinstance(back, hd.sr.ComprehensiveSR)
    assert sorted(_evidence_uids(back)) == sorted((s.SOPClassUID, s.SOPInstanceUID) for s in sources)

    regions = back.content.get_planar_roi_measurement_groups()
    assert len(regions) == len(boxes)
    for group, (x, y, w, h, p) in zip(regions, boxes, strict=True):
        assert group.finding_type == OPACITY
        corners = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
        np.testing.assert_array_equal(group.roi.value, np.array(corners))
        assert group.roi.GraphicType == "POLYLINE"
        assert (
            group.roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == sources[0].SOPInstanceUID
        )
        (measurement,) = group.get_measurements()
        assert measurement.value == p and measurement.unit == PROBABILITY_UNIT
    per_image = back.content.get_image_measurement_groups()
    if not findings:  # each source is said to show no opacity
        assert [g.finding_type for g in per_image] == [OPACITY] * len(sources)
        assert all(g.get_qualitative_evaluations()[0].value == codes.SCT.Absent for g in per_image)
        assert [g.source_images[0].referenced_sop_instance_uid for g in per_image] == [
            s.SOPInstanceUID for s in sources
        ]
        return
    assert [g.get_measurements()[0].value for g in per_image] == image_probabilities
    assert [g.source_images[0].referenced_sop_instance_uid for g in per_image] == [
        s.SOPInstanceUID for s in sources[: len(image_probabilities)]
    ]


def test_a_report_without_findings_must_say_what_is_absent(tmp_path):
    sources = read_sources(_slices(tmp_path, 1))
    with pytest.raises(ValueError, match="absent"):
        structured_report(sources, [], title="t", algorithm="a", version="1")


def test_secondary_capture_keeps_its_pixels_and_names_its_source(tmp_path):
    (source,) = read_sources(_slices(tmp_path, 1))
    rgb = np.random.default_rng(0).integers(0, 256, (source.Rows, source.Columns, 3), dtype=np.uint8)
    sc = secondary_capture(source, rgb, description="heat-map: bleed")
    (path,) = write_datasets(tmp_path / "out", [sc])
    assert path.name.startswith("sc-")
    back = pydicom.dcmread(path)
    np.testing.assert_array_equal(back.pixel_array, rgb)
    assert back.PhotometricInterpretation == "RGB" and back.StudyInstanceUID == source.StudyInstanceUID
    assert back.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert back.SeriesDescription == "heat-map: bleed"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"PatientOrientation": ["R", "F"]}, ("R", "F")),
        ({"ImageOrientationPatient": [1, 0, 0, 0, 1, 0]}, ("L", "P")),
        ({"ImageOrientationPatient": [0, -1, 0, 0, 0, -1]}, ("A", "F")),
        ({"PatientOrientation": ["LP", "F"]}, None),
        ({}, None),
    ],
)
def test_patient_orientation_comes_from_the_source(tags, expected):
    ds = pydicom.Dataset()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    assert patient_orientation(ds) == expected


def test_a_source_without_orientation_gives_an_empty_patient_orientation(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    del ds.ImageOrientationPatient
    sc = secondary_capture(ds, np.zeros((4, 5, 3), np.uint8), description="x")
    assert "PatientOrientation" in sc and not sc.PatientOrientation


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"patientId,x\n", "not a DICOM file"), (None, "file not found")],
    ids=["text", "missing"],
)
def test_a_bad_source_is_one_line_naming_it(tmp_path, content, reason):
    path = tmp_path / "notes.dcm"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RadlabDataError) as caught:
        read_sources([path])
    assert str(caught.value).startswith(str(path)) and reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_results_folder_checks(tmp_path):
    inputs, model = tmp_path / "in", tmp_path / "run"
    inputs.mkdir()
    model.mkdir()
    (tmp_path / "file").write_text("x")
    check_results_folder(tmp_path / "new" / "dicom", [inputs], [model])
    for inside in (inputs / "dicom", model / "dicom"):
        with pytest.raises(RadlabConfigError):
            check_results_folder(inside, [inputs], [model])
    with pytest.raises(RadlabDataError, match="is a file"):
        check_results_folder(tmp_path / "file", [inputs], [model])
    with pytest.raises(RadlabDataError, match="is a file"):
        write_datasets(tmp_path / "file", [])
