"""What every task's synthetic data generator shares: items drawn each from its own seed, written by several
processes (the bytes do not depend on how many), and headerless or headed CSVs written atomically."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from radlab.core.io.atomic import atomic_path

T = TypeVar("T")


def write_each(
    write: Callable[..., T],
    out: Path,
    items: Sequence[Any],
    seed: int,
    workers: int | None = None,
    *shared: Any,
    chunksize: int = 4,
) -> list[T]:
    """[write(out, item, item_seed, *shared) for each item], each item's seed spawned from `seed` and its
    position, run in `workers` processes (default: up to 4)."""
    seeds = np.random.SeedSequence(seed).spawn(len(items))
    args = [[out] * len(items), list(items), seeds, *([value] * len(items) for value in shared)]
    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(write, *args, chunksize=chunksize))
    return [write(*one) for one in zip(*args, strict=True)]


def held_out_count(total: int, fraction: float, *, least: int, held_out_least: int, what: str) -> int:
    """How many of `total` items a synthetic set holds out (valid or test): `fraction` of them, at least
    `held_out_least`; fewer than `least` items in all is refused."""
    if total < least:
        raise ValueError(f"need at least {least} {what}")
    return max(held_out_least, round(total * fraction))


def write_csv_rows(path: Path, rows: Iterable[Sequence[object]]) -> None:
    """Rows as CSV (`\\n` line ends), atomically, the folder made when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
