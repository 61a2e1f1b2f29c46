"""DICOM headers into a table, and slices into sequences (Patient / Study / Series, sorted by z).

Only headers are read here (no pixels). A file whose header cannot be read is skipped with its reason
logged and counted; a file whose pixels turn out to be corrupt is found, and dropped, when it is decoded.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radlab.core.console import warn
from radlab.core.errors import RadlabDataError
from radlab.core.io.dicom import header_value, read_header


@dataclass(frozen=True)
class SliceInfo:
    image: str
    path: Path
    patient: str
    study: str
    series: str
    z: float


def read_metadata(paths: Sequence[Path]) -> tuple[list[SliceInfo], list[tuple[Path, str]]]:
    """(slices with readable headers, [(path, reason)] for the others)."""
    slices, skipped = [], []
    for path in paths:
        try:
            ds = read_header(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                position = ds.get("ImagePositionPatient")
            z = float(position[2]) if position is not None and len(position) >= 3 else float("nan")
            slices.append(
                SliceInfo(
                    image=path.stem,
                    path=path,
                    patient=str(header_value(ds, "PatientID", "")),
                    study=str(header_value(ds, "StudyInstanceUID", "")),
                    series=str(header_value(ds, "SeriesInstanceUID", "")),
                    z=z,
                )
            )
        except RadlabDataError as exc:
            skipped.append((path, exc.reason))
        except (TypeError, ValueError) as exc:
            skipped.append((path, f"unreadable ImagePositionPatient ({exc})"))
    for path, reason in skipped:
        warn(f"{path}: {reason}; skipped")
    return slices, skipped


def sequences(slices: Sequence[SliceInfo]) -> list[list[int]]:
    """Indices of `slices` grouped by (patient, study, series), each group sorted by z (then image id)."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, info in enumerate(slices):
        groups.setdefault((info.patient, info.study, info.series), []).append(i)
    ordered = []
    for key in sorted(groups):
        members = groups[key]
        members.sort(key=lambda i: (np.inf if np.isnan(slices[i].z) else slices[i].z, slices[i].image))
        ordered.append(members)
    return ordered
