"""A request's uploads on disk: one private folder per request under the service's scratch folder, removed
when the request is answered (or fails), so that no temporary file outlives its request."""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from radlab.core.serve.spec import ServeRequest, StagedFile

_ODD = re.compile(r"[^A-Za-z0-9._-]+")
_LONGEST = 120
_CHUNK = 1 << 20


def safe_name(raw: str | None, index: int) -> str:
    """The last part of a client's file name with anything but letters, digits, `.`, `_` and `-` made `_`;
    `file<index>` when nothing is left (a name is never a path and never hidden)."""
    base = PurePosixPath((raw or "").replace("\\", "/")).name
    base = _ODD.sub("_", base).lstrip(".")
    if len(base) > _LONGEST:
        stem, dot, suffix = base.rpartition(".")
        base = stem[: _LONGEST - len(suffix) - 1] + dot + suffix if dot and len(suffix) < 10 else base[:_LONGEST]
    return base or f"file{index}"


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `stem-2.suffix`, `stem-3.suffix`, ... when a request names two files alike."""
    if name not in taken:
        return name
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, dot + suffix) if dot else (name, "")
    n = 2
    while f"{stem}-{n}{suffix}" in taken:
        n += 1
    return f"{stem}-{n}{suffix}"


def new_scratch(parent: str | Path | None = None) -> Path:
    """The service's own scratch folder (under `parent`, or the system's temporary folder)."""
    return Path(tempfile.mkdtemp(prefix="radlab-serve-", dir=parent))


@contextmanager
def staged(
    scratch: Path, uploads: Sequence[tuple[str | None, BinaryIO]], ensure_suffix: str | None = None
) -> Iterator[ServeRequest]:
    """The uploads (client name, open file) written into a new folder of `scratch`, as a request (each name
    given `ensure_suffix` when it lacks it); the folder and everything in it is removed when the block ends,
    however it ends."""
    key = "r" + uuid.uuid4().hex[:16]
    folder = scratch / key
    folder.mkdir()
    try:
        taken: set[str] = set()
        files = []
        for index, (raw, stream) in enumerate(uploads):
            name = safe_name(raw, index)
            if ensure_suffix and not name.lower().endswith(ensure_suffix):
                name += ensure_suffix
            name = _unique(name, taken)
            taken.add(name)
            path = folder / name
            with path.open("wb") as out:
                shutil.copyfileobj(stream, out, _CHUNK)
            files.append(StagedFile(name, path))
        yield ServeRequest(key, folder, tuple(files))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def scratch_folder(scratch: Path) -> Iterator[Path]:
    """A fresh folder of `scratch` for one batch's shared input files."""
    folder = scratch / ("b" + uuid.uuid4().hex[:16])
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


batch_folder = contextmanager(scratch_folder)
