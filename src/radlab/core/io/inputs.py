"""What a command given "a file or a folder" should read, and the check that keeps readers off FIFOs and
devices (a FIFO blocks a reader forever, `/dev/zero` never ends)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from radlab.core.errors import RadlabDataError

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def require_regular(path: str | Path) -> None:
    """A data error when `path` (symlinks followed) exists and is a FIFO, device or socket.

    A missing file or a folder passes: the reader's own open reports those in its words.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    for test, kind in _KINDS:
        if test(mode):
            raise RadlabDataError(path, f"not a regular file ({kind})")


def walk_files(folder: str | Path) -> Iterator[Path]:
    """Every non-folder entry under `folder`, in sorted order, without following symlinked folders (no
    loops). FIFOs and devices are yielded too, so that their reader can warn about them by name."""
    for root, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            yield Path(root) / name


def input_files(path: str | Path, suffixes: Sequence[str], what: str) -> list[Path]:
    """[path] for a file; a folder's files with one of `suffixes` (case-insensitive), sorted by name.

    A missing path, or a folder holding none of them, is a data error naming it.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if not p.is_dir() and p.suffix.lower() in suffixes)
        if not found:
            raise RadlabDataError(path, f"holds no {what} ({', '.join(suffixes)})")
        return found
    if not path.exists():
        raise RadlabDataError(path, "no such file or folder")
    return [path]
