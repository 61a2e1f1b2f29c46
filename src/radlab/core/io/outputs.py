"""Checks on the files a command is about to write, made before any work: an output must not be one of its
inputs, inside a model it reads, or another of its outputs (a usage error), and it must be writable
(a data error naming it) — so that a long prediction never ends by destroying a file or failing to save."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from radlab.core.errors import RadlabConfigError, RadlabDataError
from radlab.core.io.atomic import write_target

READ_SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".npy"}
"""What a folder given as INPUT holds: an existing file there with one of these suffixes is an input."""


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(path))


def _same_file(a: Path, b: Path) -> bool:
    """One file under two names: the same real path, or (hard links) the same inode."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(
    outputs: Sequence[str | os.PathLike[str]],
    inputs: Iterable[str | os.PathLike[str]] = (),
    models: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Refuse (exit 2) an output that is the same file as an input, one inside a model's run directory, or
    another output; refuse (exit 1) one that is a folder or cannot be written."""
    seen: dict[Path, Path] = {}
    for output in outputs:
        target, existing = write_target(output)
        real = _real(target)
        if real in seen:
            raise RadlabConfigError(f"{output} and {seen[real]} are the same file; give each output its own name")
        seen[real] = Path(output)
        for source in inputs:
            source_real = _real(source)
            inside = source_real.is_dir() and existing is not None and real.is_relative_to(source_real)
            inside = inside and real.suffix.lower() in READ_SUFFIXES  # one of the folder's images
            if _same_file(real, source_real) or inside:
                raise RadlabConfigError(f"{output} would overwrite the input {source}; write the output elsewhere")
        for model in models:  # whether it exists yet or not: a rerun must not be refused what a first run did
            if real.is_relative_to(_real(model)):
                raise RadlabConfigError(f"{output} is inside the model {model}; write the output elsewhere")
        _check_writable(Path(output), target, existing is not None)


def _check_writable(output: Path, target: Path, exists: bool) -> None:
    if exists:
        if not os.access(target, os.W_OK):
            raise RadlabDataError(output, "cannot be written (permission denied)")
        return
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise RadlabDataError(output, f"cannot be written: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RadlabDataError(output, f"cannot be written: {folder} is not writable")
