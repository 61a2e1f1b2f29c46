"""Predictions as DICOM: a Structured Report (TID 1500 measurement report) that references the images it is
about, and Secondary Capture overlays, built with highdicom so that PACS and viewers can store and show them.

Task-agnostic: a task turns its prediction into `Finding`s (a probability per image, or per box on an
image) and its pictures into RGB arrays; this module makes valid DICOM of them and writes them.
"""

from __future__ import annotations

import copy
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from radlab.core.errors import FileErrors, RadlabDataError, unreadable
from radlab.core.io.atomic import atomic_path

SCHEME = "99RADLAB"
"""The private coding scheme of radlab's own concepts (the challenges' labels have no standard codes)."""

PROBABILITY = Code("probability", SCHEME, "Probability")
PROBABILITY_UNIT = Code("{probability}", "UCUM", "probability")
MANUFACTURER = "radlab"
SR_SERIES_NUMBER = 990
SC_SERIES_NUMBER = 991


@dataclass(frozen=True)
class Finding:
    """One prediction about one source image: `concept` (what was found) with its `probability`, and, for a
    detection, its `box` as (x, y, width, height) in the source's pixel coordinates."""

    source: Dataset
    concept: Code
    probability: float
    box: tuple[float, float, float, float] | None = None


def read_sources(paths: Sequence[str | Path]) -> list[Dataset]:
    """The DICOM headers of `paths` (no pixel data); a file that is not DICOM, or is not an image instance,
    is one RadlabDataError naming it."""
    return [_read_source(Path(path)) for path in paths]


def _read_source(path: Path) -> Dataset:
    with quiet_pydicom():
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except FileErrors as error:
            raise unreadable(path, error, "a DICOM file") from None
        except Exception:
            raise RadlabDataError(path, "not a DICOM file (no DICM preamble)") from None
        for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"):
            if not str(ds.get(keyword, "") or ""):
                raise RadlabDataError(path, f"has no {keyword}; a DICOM result cannot reference it")
    return ds


PATIENT_STUDY = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
"""The patient and study attributes a result copies from its sources (Type 2: empty when a source lacks one)."""


def _evidence(source: Dataset) -> Dataset:
    """A copy of `source`'s header with every PATIENT_STUDY attribute present (highdicom reads them all)."""
    ds = copy.deepcopy(source)
    for keyword in PATIENT_STUDY:
        if keyword not in ds:
            setattr(ds, keyword, None)
    return ds


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """pydicom's and highdicom's complaints about the challenges' non-conformant values (ICH's UIDs look like
    `ID_63eb1e259`) are silenced: they are the data's, and the references must keep them as they are."""
    loggers = [logging.getLogger(name) for name in ("pydicom", "highdicom")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def structured_report(
    sources: Sequence[Dataset],
    findings: Sequence[Finding],
    *,
    title: str,
    algorithm: str,
    version: str,
    procedure: Code = codes.SCT.ImagingProcedure,
    absent: Code | None = None,
    series_number: int = SR_SERIES_NUMBER,
) -> Dataset:
    """A Comprehensive SR in the sources' study (same patient and study, a new series and instance) that
    lists every source as evidence and in its image library; each finding is a measurement group: a box as an
    image region (a closed rectangular POLYLINE) with its probability, otherwise the image's probability.
    With no finding, each source gets a group saying the concept `absent` (what was looked for) is Absent:
    a report holds at least one group."""
    if not sources:
        raise ValueError("a structured report needs at least one source image")
    if not findings and absent is None:
        raise ValueError("a structured report without findings needs the `absent` concept")
    algorithm_id = hd.sr.AlgorithmIdentification(name=algorithm, version=version)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=pydicom.uid.generate_uid(entropy_srcs=[algorithm, version]), name=algorithm
        ),
    )
    with quiet_pydicom():
        groups = [_group(finding, algorithm_id, number) for number, finding in enumerate(findings, 1)]
        if not findings and absent is not None:
            groups = [_absent(source, absent, algorithm_id, number) for number, source in enumerate(sources, 1)]
        report = hd.sr.MeasurementReport(
            observation_context=hd.sr.ObservationContext(observer_device_context=observer),
            procedure_reported=procedure,
            imaging_measurements=groups,
            title=Code("title", SCHEME, title),
        )
        sr = hd.sr.ComprehensiveSR(
            evidence=[_evidence(source) for source in sources],
            content=report[0],
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            is_complete=True,
            series_description=title[:64],
        )
    return sr


def _group(
    finding: Finding, algorithm_id: hd.sr.AlgorithmIdentification, number: int
) -> hd.sr.MeasurementsAndQualitativeEvaluations | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    """One finding's measurement group (TID 1410 for a box, TID 1501 for a whole image)."""
    source = finding.source
    measurement = hd.sr.Measurement(
        name=PROBABILITY, value=float(finding.probability), unit=PROBABILITY_UNIT, algorithm_id=algorithm_id
    )
    tracking = hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"{finding.concept.meaning} {number}")
    if finding.box is None:
        return hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,
            finding_type=finding.concept,
            algorithm_id=algorithm_id,
            measurements=[measurement],
            source_images=[hd.sr.SourceImageForMeasurementGroup(source.SOPClassUID, source.SOPInstanceUID)],
        )
    x, y, width, height = (float(v) for v in finding.box)
    corners = np.array([[x, y], [x + width, y], [x + width, y + height], [x, y + height], [x, y]])
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=corners,
        source_image=hd.sr.SourceImageForRegion(source.SOPClassUID, source.SOPInstanceUID),
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        referenced_region=region,
        finding_type=finding.concept,
        algorithm_id=algorithm_id,
        measurements=[measurement],
    )


def _absent(
    source: Dataset, concept: Code, algorithm_id: hd.sr.AlgorithmIdentification, number: int
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """A whole-image group (TID 1501) saying `concept` is absent from `source`."""
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"{concept.meaning} {number}"),
        finding_type=concept,
        algorithm_id=algorithm_id,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=concept, value=codes.SCT.Absent)],
        source_images=[hd.sr.SourceImageForMeasurementGroup(source.SOPClassUID, source.SOPInstanceUID)],
    )


def secondary_capture(
    source: Dataset,
    rgb: np.ndarray,
    *,
    description: str,
    series_instance_uid: str | None = None,
    series_number: int = SC_SERIES_NUMBER,
    instance_number: int = 1,
) -> Dataset:
    """An RGB Secondary Capture of a picture drawn over `source` (its study and patient, a new instance,
    the source named in SourceImageSequence); pass one `series_instance_uid` to keep several in one series."""
    pixels = np.asarray(rgb)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"a secondary capture needs an (H, W, 3) uint8 picture, got {pixels.shape} {pixels.dtype}")
    orientation = patient_orientation(source)
    with quiet_pydicom():
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=source,
            pixel_array=pixels,
            photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
            bits_allocated=8,
            coordinate_system=hd.CoordinateSystemNames.PATIENT,
            series_instance_uid=series_instance_uid or hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=instance_number,
            manufacturer=MANUFACTURER,
            patient_orientation=orientation or ("L", "F"),
            transfer_syntax_uid=pydicom.uid.ExplicitVRLittleEndian,
        )
    if orientation is None:  # Type 2: present and empty when the source does not say
        del sc.PatientOrientation
        sc.add_new("PatientOrientation", "CS", None)
    sc.SeriesDescription = description[:64]
    sc.ImageComments = description
    sc.DerivationDescription = description
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    sc.SourceImageSequence = [reference]
    return sc


_AXES = (("R", "L"), ("A", "P"), ("F", "H"))


def patient_orientation(source: Dataset) -> tuple[str, str] | None:
    """The (row, column) directions of `source` as patient letters: its PatientOrientation when it has
    single letters, else the main axis of each ImageOrientationPatient cosine; None when it says neither."""
    given = [str(v) for v in (source.get("PatientOrientation") or [])]
    if len(given) == 2 and all(re.fullmatch("[LRAPHF]", v) for v in given):
        return given[0], given[1]
    cosines = source.get("ImageOrientationPatient")
    try:
        values = np.array([float(v) for v in cosines], dtype=np.float64).reshape(2, 3)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(values).all() or not values.any(axis=1).all():
        return None
    letters = []
    for vector in values:
        axis = int(np.argmax(np.abs(vector)))
        letters.append(_AXES[axis][int(vector[axis] > 0)])
    return letters[0], letters[1]


def result_name(ds: Dataset) -> str:
    """A file name that says what `ds` is: `sr-<SOPInstanceUID>.dcm` or `sc-<SOPInstanceUID>.dcm`."""
    kind = "sc" if ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage else "sr"
    return f"{kind}-{ds.SOPInstanceUID}.dcm"


def write_datasets(folder: str | Path, datasets: Sequence[Dataset]) -> list[Path]:
    """Write each dataset to `folder/<result_name>` as a DICOM file (preamble and file meta), atomically."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RadlabDataError(folder, "is a file; give a folder for the DICOM results")
    written = []
    for ds in datasets:
        path = folder / result_name(ds)
        with quiet_pydicom(), atomic_path(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        written.append(path)
    return written


def radlab_version() -> str:
    """The installed radlab's version: the version of the algorithm a result names."""
    try:
        return metadata.version("radlab")
    except metadata.PackageNotFoundError:
        return "unknown"
