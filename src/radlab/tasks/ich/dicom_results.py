"""ICH predictions as DICOM: per study one Structured Report holding each slice's six probabilities, every
slice referenced, and a Secondary Capture per picture (`radlab serve`, `predict --dicom-out`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

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
from radlab.tasks.ich.formats import SUBTYPES, read_submission

CONCEPTS = {
    "epidural": Code("epidural", SCHEME, "Epidural hemorrhage"),
    "intraparenchymal": Code("intraparenchymal", SCHEME, "Intraparenchymal hemorrhage"),
    "intraventricular": Code("intraventricular", SCHEME, "Intraventricular hemorrhage"),
    "subarachnoid": Code("subarachnoid", SCHEME, "Subarachnoid hemorrhage"),
    "subdural": Code("subdural", SCHEME, "Subdural hemorrhage"),
    "any": codes.SCT.IntracranialHemorrhage,
}
TITLE = "radlab ich: hemorrhage probabilities per slice"
ALGORITHM = "radlab ich"


def dicom_results(
    sources: Sequence[Path], prediction: dict[str, Any], pictures: Sequence[Explanation] = ()
) -> list[Dataset]:
    """One SR per study of `sources` (serve's ich `prediction`: six probabilities per slice, found by its
    SOPInstanceUID or file name), referencing every predicted slice, then one Secondary Capture per picture
    on the slice it names (`<slice>.<subtype>`, as `radlab explain` names them)."""
    headers = read_sources(sources)
    by_key: dict[str, Dataset] = {}
    for path, ds in zip(sources, headers, strict=True):
        by_key.setdefault(str(ds.SOPInstanceUID), ds)
        by_key.setdefault(Path(path).stem, ds)
    studies: dict[str, tuple[list[Dataset], list[Finding]]] = {}
    for image in prediction["images"]:
        header = by_key.get(str(image["sop_instance_uid"]))
        if header is None:
            raise RadlabDataError(str(image["sop_instance_uid"]), "is not the SOPInstanceUID of any given slice")
        slices, findings = studies.setdefault(str(header.StudyInstanceUID), ([], []))
        slices.append(header)
        findings += [Finding(header, CONCEPTS[name], float(image[name])) for name in SUBTYPES]
    version = radlab_version()
    reports = [
        structured_report(
            slices,
            findings,
            title=TITLE,
            algorithm=ALGORITHM,
            version=version,
            procedure=codes.SCT.ComputedTomographyOfHead,
        )
        for slices, findings in studies.values()
    ]
    return [*reports, *_captures(by_key, pictures)]


def _captures(by_key: dict[str, Dataset], pictures: Sequence[Explanation]) -> list[Dataset]:
    """A Secondary Capture per picture, one series per study."""
    series: dict[str, str] = {}
    captures = []
    for number, picture in enumerate(pictures, 1):
        named = str(picture.details.get("input", "")) or picture.name
        header = by_key.get(Path(named).stem) or by_key.get(picture.name.split(".")[0])
        if header is None:
            raise RadlabDataError(picture.name, "names none of the given slices")
        study = str(header.StudyInstanceUID)
        capture = secondary_capture(
            header,
            picture.image,
            description=picture.caption,
            series_instance_uid=series.get(study),
            instance_number=number,
        )
        series.setdefault(study, str(capture.SeriesInstanceUID))
        captures.append(capture)
    return captures


def prediction_of(uids: Sequence[str], probs: np.ndarray) -> dict[str, Any]:
    """serve's ich `prediction` from slice SOPInstanceUIDs and their (n, 6) probabilities (SUBTYPES order)."""
    return {
        "images": [
            {"sop_instance_uid": uid, **{name: float(p) for name, p in zip(SUBTYPES, row, strict=True)}}
            for uid, row in zip(uids, probs, strict=True)
        ]
    }


def submission_results(input_dir: Path, submission: Path) -> list[Dataset]:
    """The SRs (one per study) of the slices of a submission `predict` wrote from `input_dir`."""
    paths = {path.stem: path for path in list_dicom_folder(input_dir)}
    images, probs = read_submission(submission)
    return dicom_results([paths[image] for image in images], prediction_of(images, probs))
