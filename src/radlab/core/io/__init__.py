"""Reading images, DICOM and volumes robustly; writing outputs atomically."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from radlab.core.errors import RadlabDataError


def resolve_dataset_root(folder: str | Path, root_name: str) -> Path:
    """The folder a dataset's CSV paths are relative to: the parent of `root_name` (given it or its parent)."""
    folder = Path(folder)
    if (folder / root_name).is_dir():
        return folder
    if folder.name == root_name and folder.is_dir():
        return folder.parent
    raise RadlabDataError(folder, f"no {root_name}/ folder here (pass the folder that contains it)")


def resolve_under(
    root: str | Path, relative: str, *, allow_outside: bool, source: str | Path, line: int | None = None
) -> Path:
    """A path read from a CSV (`source`, `line`), joined to `root`, refused when it leaves it.

    Absolute paths and `..` that climb above `root` are errors unless `allow_outside` (the command's
    --allow-outside-root). The check is lexical: symlinks inside the data root are followed as usual.
    """
    candidate = PurePath(relative)
    if not allow_outside:
        if candidate.is_absolute():
            raise RadlabDataError(source, f"absolute path {relative!r}: use --allow-outside-root to read it", line)
        if os.path.normpath(relative).split(os.sep)[0] == "..":
            raise RadlabDataError(source, f"path {relative!r} climbs out of the data root (--allow-outside-root)", line)
    return Path(root) / candidate
