"""Read small CSV files row by row with their line numbers, so every complaint can name file:line."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from radlab.core.errors import FileErrors, RadlabDataError, unreadable


def iter_csv_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, stripped cells) for every non-blank row of a comma-separated file."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            yield from _rows(path, csv.reader(handle))
    except FileErrors as error:
        raise unreadable(path, error, "a CSV file") from None


def _rows(path: Path, reader: Any) -> Iterator[tuple[int, list[str]]]:
    line = 0
    try:
        for row in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in row]
            if any(cells):
                yield line, cells
    except UnicodeDecodeError:
        raise RadlabDataError(path, "not UTF-8 text", _first_bad_line(path) or line + 1) from None
    except csv.Error as exc:
        raise RadlabDataError(path, f"malformed CSV ({exc})", reader.line_num) from None


def _first_bad_line(path: Path) -> int | None:
    """The 1-based line holding the first byte that is not UTF-8 (the decoder reads in chunks, so its own
    position is that of a chunk). None when the file cannot be read again (a pipe)."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return number
    except OSError:
        return None
    return None
