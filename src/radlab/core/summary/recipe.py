"""The recipe checklist of a task (docs/recipes/<task>.md in a source checkout): the rows in which radlab's
recipe is not the original's, for the model card."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[4] / "docs" / "recipes"
"""Where the checklists are in a checkout (src/radlab/core/summary -> docs/recipes)."""


def checklist(task: str, docs: Path = DOCS) -> Path | None:
    path = docs / f"{task}.md"
    return path if path.is_file() else None


def differences(path: Path) -> list[list[str]]:
    """Rows (item, original, radlab, verdict) of the checklist's table whose verdict is not plain "same"."""
    rows: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not line.lstrip().startswith("|") or cells[0] in ("item", "") or set(cells[0]) <= {"-"}:
            continue
        if cells[3].lower() != "same":
            rows.append(cells)
    return rows
