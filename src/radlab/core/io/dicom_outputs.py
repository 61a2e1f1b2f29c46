"""The `--dicom-out DIR` and `--stow URL` options of a predict that can also give DICOM results, and the
check of DIR made before any work. Light on purpose: the command line imports it, highdicom stays unloaded
until results are built."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from radlab.core.errors import RadlabConfigError, RadlabDataError

DicomOutOption = Annotated[
    Path | None,
    typer.Option(
        "--dicom-out",
        metavar="DIR",
        help="Also write DICOM results (Structured Reports referencing the input images) into DIR.",
    ),
]
StowOption = Annotated[
    str | None,
    typer.Option(
        "--stow",
        metavar="URL",
        help="Also store the DICOM results on this DICOMweb server (STOW-RS; a bearer token from "
        "RADLAB_DICOMWEB_TOKEN).",
    ),
]


def check_results_folder(
    folder: str | Path, inputs: Sequence[str | Path] = (), models: Sequence[str | Path] = ()
) -> None:
    """Before any work: `folder` (for DICOM results) must not be a file, nor inside an input folder (the
    results are .dcm files a later predict would read as inputs) or a model, and must be writable."""
    folder = Path(folder)
    real = Path(os.path.realpath(folder))
    if folder.exists() and not folder.is_dir():
        raise RadlabDataError(folder, "is a file; give a folder for the DICOM results")
    for source in inputs:
        source_real = Path(os.path.realpath(source))
        if source_real.is_dir() and real.is_relative_to(source_real):
            raise RadlabConfigError(f"{folder} is inside the input {source}; write the DICOM results elsewhere")
    for model in models:
        if real.is_relative_to(Path(os.path.realpath(model))):
            raise RadlabConfigError(f"{folder} is inside the model {model}; write the DICOM results elsewhere")
    existing = real
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise RadlabDataError(folder, f"cannot be written: {existing} is not a writable folder")
