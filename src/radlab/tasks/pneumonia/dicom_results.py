"""Pneumonia predictions as DICOM: per chest X-ray one Structured Report whose lung-opacity boxes are image
regions with their confidences, and a Secondary Capture per picture (`radlab serve`, `predict --dicom-out`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from radlab.core.console import warn
from radlab.core.errors import RadlabDataError
from radlab.core.explain.explanation import Explanation
from radlab.core.io.dicom import list_dicom_folder
from radlab.core.io.dicom_results import (
    SCHEME,
    Finding,
    radlab_version,
    read_sources,
    secondary_capture,
    structured_report,
)
from radlab.tasks.pneumonia.formats import format_prediction_string, read_submission

LUNG_OPACITY = Code("lung-opacity", SCHEME, "Lung Opacity")
TITLE = "radlab pneumonia: lung opacity boxes"
ALGORITHM = "radlab pneumonia"


def dicom_results(
    sources: Sequence[Path], prediction: dict[str, Any], pictures: Sequence[Explanation] = ()
) -> list[Dataset]:
    """The SR of `prediction` (serve's pneumonia `prediction`: boxes in the DICOM's pixels) about the one
    chest X-ray in `sources`, then one Secondary Capture per picture (an RGB overlay at the image's size)."""
    if len(sources) != 1:
        raise RadlabDataError(", ".join(map(str, sources)) or "no file", "pneumonia takes exactly one DICOM image")
    (source,) = read_sources(sources)
    findings = [
        Finding(
            source,
            LUNG_OPACITY,
            float(box["confidence"]),
            (float(box["x"]), float(box["y"]), float(box["width"]), float(box["height"])),
        )
        for box in prediction["boxes"]
    ]
    report = structured_report(
        [source],
        findings,
        title=TITLE,
        algorithm=ALGORITHM,
        version=radlab_version(),
        procedure=codes.SCT.ChestImaging,
        absent=LUNG_OPACITY,
    )
    series = None
    captures = []
    for number, picture in enumerate(pictures, 1):
        capture = secondary_capture(
            source, picture.image, description=picture.caption, series_instance_uid=series, instance_number=number
        )
        series = capture.SeriesInstanceUID
        captures.append(capture)
    return [report, *captures]


def prediction_of(boxes: Any, scores: Any) -> dict[str, Any]:
    """serve's pneumonia `prediction` from (n, 4) x, y, width, height boxes and their (n,) confidences."""
    return {
        "boxes": [
            {"confidence": float(s), "x": float(b[0]), "y": float(b[1]), "width": float(b[2]), "height": float(b[3])}
            for b, s in zip(boxes, scores, strict=True)
        ],
        "prediction_string": format_prediction_string(boxes, scores),
    }


def submission_results(input_dir: Path, submission: Path) -> list[Dataset]:
    """The SR of every image of a submission `predict` wrote from `input_dir`; an image whose header cannot
    be read (it was written with no box) gets none, with a warning."""
    paths = {path.stem: path for path in list_dicom_folder(input_dir)}
    return list(_each(paths, read_submission(submission).items()))


def _each(paths: dict[str, Path], rows: Iterable[tuple[str, Any]]) -> Iterable[Dataset]:
    for patient, predicted in rows:
        try:
            yield from dicom_results([paths[patient]], prediction_of(predicted.boxes, predicted.scores))
        except RadlabDataError as error:
            warn(f"{error}; no DICOM result for it")
