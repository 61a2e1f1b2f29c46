"""What `radlab explain` writes: one PNG per picture and an index of what each shows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from radlab.core.console import warn
from radlab.core.errors import RadlabDataError
from radlab.core.explain.overlay import save_png
from radlab.core.io.atomic import atomic_write_text

T = TypeVar("T")


@dataclass(frozen=True)
class Explanation:
    """One picture (RGB uint8 at the original image's size), its caption and the numbers behind it."""

    name: str
    image: np.ndarray
    caption: str
    details: dict[str, Any] = field(default_factory=dict)


def explain_each(items: Iterable[T], explain_one: Callable[[T], Sequence[Explanation]]) -> list[Explanation]:
    """Explain every item; an unreadable one costs a warning naming it, not the others' pictures."""
    done: list[Explanation] = []
    for item in items:
        try:
            done += explain_one(item)
        except RadlabDataError as error:
            warn(f"{error} (not explained)")
    return done


def write_explanations(out: str | Path, explanations: Sequence[Explanation]) -> list[Path]:
    """`out/<name>.png` per picture and `out/explanations.json` listing them, all written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written, index = [], []
    for item in explanations:
        path = save_png(out / f"{item.name}.png", item.image)
        written.append(path)
        index.append({"file": path.name, "caption": item.caption, **item.details})
    atomic_write_text(out / "explanations.json", json.dumps(index, indent=2) + "\n")
    return written
