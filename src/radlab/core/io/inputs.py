"""What a command given "a file or a folder" should read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from radlab.core.errors import RadlabDataError


def input_files(path: str | Path, suffixes: Sequence[str], what: str) -> list[Path]:
    """[path] for a file; a folder's files with one of `suffixes` (case-insensitive), sorted by name.

    A missing path, or a folder holding none of them, is a data error naming it.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise RadlabDataError(path, "no such file or folder")
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not found:
        raise RadlabDataError(path, f"holds no {what} ({', '.join(suffixes)})")
    return found
