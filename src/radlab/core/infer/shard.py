"""Prediction at archive scale: `--shard I/N` keeps a deterministic 1/N of the input's units (studies,
exams, images, series) and `merge` puts the N outputs back together as the unsharded run would have
written them, byte for byte.

A unit belongs to shard `sha256(key) mod N` (I counts from 0, as SLURM array ids and torchrun ranks do).
The hash, rather than the rank in the sorted unit list, makes a unit's shard a function of its own key
alone: the same on every machine and Python (no hash seed, no locale), whatever else the input holds, so
that `merge` can name the shard a missing unit belongs to. Shards are balanced in expectation only.

`--shard auto` takes I and N from torchrun's RANK and WORLD_SIZE and writes each output beside the named
one as `NAME.shard-I-of-N.SUFFIX`. `merge` orders its shard files by that pattern when every name has it,
otherwise takes them in the order given (shard 0 first).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from radlab.core.errors import RadlabConfigError, RadlabDataError, RadlabError, unreadable
from radlab.core.io.atomic import atomic_write_text

T = TypeVar("T")
AUTO = "auto"
_SPEC = re.compile(r"^(\d+)/(\d+)$")
_NAMED = re.compile(r"\.shard-(\d+)-of-(\d+)(?:\.|$)")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (from 0) of `count`."""

    index: int
    count: int

    def holds(self, key: str) -> bool:
        """Whether the unit called `key` is predicted by this shard."""
        return shard_of(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(key: str, count: int) -> int:
    """The shard (from 0) of `count` a unit belongs to: the first 8 bytes of sha256(key) mod count."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % count


def parse_shard(text: str, environ: dict[str, str] | None = None) -> Shard:
    """`I/N` (0 <= I < N) or `auto` (torchrun's RANK/WORLD_SIZE); anything else is a usage error (exit 2)."""
    if text == AUTO:
        env = os.environ if environ is None else environ
        rank, world = env.get("RANK"), env.get("WORLD_SIZE")
        if rank is None or world is None:
            raise RadlabConfigError("--shard auto takes RANK and WORLD_SIZE from torchrun; start it with torchrun")
        text = f"{rank}/{world}"
    match = _SPEC.match(text.strip())
    if match is None:
        raise RadlabConfigError(f"--shard {text!r}: expected I/N (e.g. 0/100), I counting from 0, or auto")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise RadlabConfigError(f"--shard {text}: I must be 0..N-1 and N at least 1")
    return Shard(index, count)


def shard_path(path: Path, shard: Shard) -> Path:
    """`preds.csv` -> `preds.shard-I-of-N.csv`: where `--shard auto` writes, one file per process."""
    return path.with_name(f"{path.stem}.shard-{shard.index}-of-{shard.count}{path.suffix}")


def of_shard(items: Iterable[T], shard: Shard | None, key: Callable[[T], str]) -> list[T]:
    """The items whose unit (`key(item)`) this shard predicts, in their order; all of them without a shard."""
    return list(items) if shard is None else [item for item in items if shard.holds(key(item))]


def ordered_shards(paths: Sequence[Path]) -> list[Path]:
    """The shard files in shard order: by their `.shard-I-of-N` names when every one has such a name (and
    they are 0..N-1 of N exactly), else as given."""
    named = [_NAMED.search(path.name) for path in paths]
    if not paths or any(match is None for match in named):
        return list(paths)
    found = {(int(m.group(1)), int(m.group(2))): path for m, path in zip(named, paths, strict=True) if m}
    counts = {count for _, count in found}
    if len(counts) != 1:
        raise RadlabConfigError(f"the shard files are of different counts N ({', '.join(map(str, sorted(counts)))})")
    (count,) = counts
    if len(found) != len(paths):
        raise RadlabConfigError("a shard file is given twice")
    for index in range(count):
        if (index, count) not in found:
            raise RadlabError(f"no shard file for shard {index} of {count} (*.shard-{index}-of-{count}.*) given")
    return [found[index, count] for index in range(count)]


@dataclass(frozen=True)
class ShardFile:
    """A shard output split as merge needs it: its header text and each row key's text, in file order."""

    header: str
    rows: dict[str, str]


def merge_shards(
    rows: Sequence[tuple[str, str]],
    shards: Sequence[Path],
    output: Path,
    read: Callable[[Path, list[str]], ShardFile],
    what: str = "unit",
    optional: Callable[[str], bool] | None = None,
) -> int:
    """Write `output` from the shard files as the unsharded run would have: `rows` are the input's (row key,
    unit key) in the unsharded output's order; `read(path, expected row keys)` splits one shard file. A row
    in the wrong shard file, or one missing from its shard while `optional(row key)` is not true, is one
    line naming the file. Returns the number of rows written."""
    paths = ordered_shards(shards)
    count = len(paths)
    owner = {row: shard_of(unit, count) for row, unit in rows}
    unit_of = dict(rows)
    header: str | None = None
    texts: dict[str, str] = {}
    for index, path in enumerate(paths):
        expected = [row for row, _ in rows if owner[row] == index]
        part = read(path, expected)
        if header is not None and part.header != header:
            raise RadlabDataError(path, f"its header differs from that of {paths[0]}")
        header = part.header
        for row in part.rows:
            if row not in owner:
                raise RadlabDataError(path, f"holds {row!r}, which the input does not list")
            if owner[row] != index:
                where = f"shard {owner[row]} of {count} ({paths[owner[row]]})"
                raise RadlabDataError(path, f"holds {what} {unit_of[row]!r}, which belongs to {where}")
        for row in expected:
            if row not in part.rows and not (optional and optional(row)):
                raise RadlabDataError(path, f"lacks {what} {unit_of[row]!r} (shard {index} of {count})")
        texts.update(part.rows)
    atomic_write_text(output, (header or "") + "".join(texts[row] for row, _ in rows if row in texts))
    return len(texts)


def keyed_lines(path: Path, header_lines: int = 0, key: Callable[[str], str] | None = None) -> ShardFile:
    """A text output whose rows start with their key (`key,...`): the first `header_lines` lines as the
    header, then every line under its key (consecutive lines of one key stay together). A key found in two
    places of the file is an error naming it."""
    lines = _lines(path)
    rows: dict[str, str] = {}
    last: str | None = None
    for number, line in enumerate(lines[header_lines:], start=header_lines + 1):
        name = key(line) if key else next(csv.reader([line]), [""])[0]
        if name in rows and name != last:
            raise RadlabDataError(path, f"{name!r} is listed twice", number)
        rows[name] = rows.get(name, "") + line
        last = name
    return ShardFile("".join(lines[:header_lines]), rows)


def for_process(shard: Shard, outputs: dict[str, Path], device: str, auto: bool) -> tuple[dict[str, Path], str]:
    """With `--shard auto`, the outputs renamed `NAME.shard-I-of-N.SUFFIX` (one file per process) and, for
    `--device auto` on a machine with GPUs, the process's own GPU (torchrun's LOCAL_RANK); else as given."""
    if not auto:
        return outputs, device
    renamed = {name: shard_path(Path(path), shard) for name, path in outputs.items()}
    local = os.environ.get("LOCAL_RANK")
    if device == AUTO and local is not None and local.isdigit():
        import torch

        if torch.cuda.is_available() and int(local) < torch.cuda.device_count():
            device = f"cuda:{local}"
    return renamed, device


def positional_lines(path: Path, expected: Sequence[str], what: str = "unit") -> ShardFile:
    """A headerless output whose rows name no unit (MRNet's): line k is the shard's k-th expected unit, so
    the count must match."""
    lines = _lines(path)
    if len(lines) != len(expected):
        raise RadlabDataError(
            path, f"has {len(lines)} rows where its shard of the input has {len(expected)} {what}s (wrong shard file?)"
        )
    return ShardFile("", dict(zip(expected, lines, strict=True)))


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError as exc:
        raise unreadable(path, exc, "a shard output") from None
