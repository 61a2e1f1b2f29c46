"""Reading images, DICOM and volumes robustly; writing outputs atomically."""

from __future__ import annotations

from pathlib import Path

from radlab.core.errors import RadlabDataError


def resolve_dataset_root(folder: str | Path, root_name: str) -> Path:
    """The folder a dataset's CSV paths are relative to: the parent of `root_name` (given it or its parent)."""
    folder = Path(folder)
    if (folder / root_name).is_dir():
        return folder
    if folder.name == root_name and folder.is_dir():
        return folder.parent
    raise RadlabDataError(folder, f"no {root_name}/ folder here (pass the folder that contains it)")
