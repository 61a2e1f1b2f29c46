"""A cheap manifest of a training data folder: file counts by suffix and the sha256 of its label files.

Images are counted, never read (a real data set has up to a million of them); the small text files beside
them (CSV, TSV, JSON, TXT: the label tables and split lists of every challenge) are hashed, so that a
changed label or split shows."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path
from typing import Any

LABEL_SUFFIXES = frozenset({".csv", ".tsv", ".json", ".txt"})
MAX_LABEL_BYTES = 1 << 30
"""A text file larger than this is counted, not hashed."""
MAX_ENTRIES = 5_000_000
"""Walking stops after this many files (the manifest then says it is truncated)."""


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_manifest(root: str | Path) -> dict[str, Any]:
    """{"root", "files" (count per lower-case suffix), "total_files", "label_files" (relative path: bytes
    and sha256), "truncated"} of `root`; hidden files and folders are skipped, links not followed."""
    root = Path(root).absolute()
    counts: Counter[str] = Counter()
    labels: dict[str, dict[str, Any]] = {}
    total, truncated = 0, False
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            if total >= MAX_ENTRIES:
                truncated = True
                break
            total += 1
            path = Path(folder, name)
            suffix = path.suffix.lower()
            counts[suffix] += 1
            if suffix in LABEL_SUFFIXES:
                labels[path.relative_to(root).as_posix()] = _label_entry(path)
        if truncated:
            break
    return {
        "root": str(root),
        "files": dict(sorted(counts.items())),
        "total_files": total,
        "label_files": labels,
        "truncated": truncated,
    }


def _label_entry(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        return {"bytes": size, "sha256": sha256_file(path) if size <= MAX_LABEL_BYTES else None}
    except OSError as error:
        return {"bytes": None, "sha256": None, "error": error.strerror or str(error)}
