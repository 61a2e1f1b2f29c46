"""RSNA ICH files: `stage_2_train.csv` (six rows per image) and the `ID,Label` submission.

IDs are `ID_<image>_<subtype>`; each image has the six subtypes below, "any" last. The real file repeats a
few images (identical rows are dropped here, with a count); conflicting labels for one ID are an error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from radlab.core.console import warn
from radlab.core.errors import RadlabDataError
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.csvfiles import iter_csv_rows

SUBTYPES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")
WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 2.0])
HEADER = ["ID", "Label"]
TRAIN_CSV = "stage_2_train.csv"
TRAIN_IMAGES = "stage_2_train_images"
TEST_IMAGES = "stage_2_test_images"
CLIP = 1e-5


def resolve_data_root(folder: str | Path) -> Path:
    """The challenge's folder (it holds stage_2_train.csv and the image folders); one line otherwise."""
    folder = Path(folder)
    if not (folder / TRAIN_CSV).is_file():
        raise RadlabDataError(folder / TRAIN_CSV, "missing: pass the folder that holds the challenge's files")
    return folder


def split_id(raw: str) -> tuple[str, str] | None:
    """`ID_63eb1e259_epidural` -> ("ID_63eb1e259", "epidural"); None when it is not of that form."""
    image, sep, subtype = raw.rpartition("_")
    return (image, subtype) if sep and image.startswith("ID_") and subtype in SUBTYPES else None


def _rows(csv_path: str | Path) -> tuple[list[str], dict[str, dict[str, tuple[str, int]]]]:
    """Image order and, per image, subtype -> (raw value, line)."""
    rows = iter(iter_csv_rows(csv_path))
    first = next(rows, None)
    if first is None or first[1] != HEADER:
        raise RadlabDataError(
            csv_path, f"expected the header 'ID,Label', got {','.join(first[1]) if first else 'nothing'!r}", 1
        )
    order: list[str] = []
    values: dict[str, dict[str, tuple[str, int]]] = {}
    duplicates = 0
    for line, cells in rows:
        parsed = split_id(cells[0]) if len(cells) == 2 else None
        if parsed is None:
            raise RadlabDataError(csv_path, f"expected 'ID_<image>_<subtype>,<label>', got {','.join(cells)!r}", line)
        image, subtype = parsed
        if image not in values:
            values[image] = {}
            order.append(image)
        earlier = values[image].get(subtype)
        if earlier is not None:
            if earlier[0] != cells[1]:
                raise RadlabDataError(
                    csv_path, f"{cells[0]} is {earlier[0]} on line {earlier[1]} and {cells[1]} here", line
                )
            duplicates += 1
            continue
        values[image][subtype] = (cells[1], line)
    if duplicates:
        warn(f"{csv_path}: {duplicates} repeated rows dropped ({duplicates // 6} images listed twice)")
    for image in order:
        missing = [s for s in SUBTYPES if s not in values[image]]
        if missing:
            line = min(line for _, line in values[image].values())
            raise RadlabDataError(csv_path, f"{image} lacks {', '.join(missing)}", line)
    return order, values


def read_labels(csv_path: str | Path) -> tuple[list[str], np.ndarray]:
    """Image ids (first-seen order) and their (n, 6) 0/1 labels in SUBTYPES order."""
    order, values = _rows(csv_path)
    labels = np.zeros((len(order), len(SUBTYPES)), dtype=np.int64)
    for i, image in enumerate(order):
        for j, subtype in enumerate(SUBTYPES):
            raw, line = values[image][subtype]
            if raw not in ("0", "1"):
                raise RadlabDataError(csv_path, f"label {raw!r} of {image}_{subtype} is not 0 or 1", line)
            labels[i, j] = int(raw)
    return order, labels


def read_submission(csv_path: str | Path) -> tuple[list[str], np.ndarray]:
    """Image ids and their (n, 6) probabilities from an `ID,Label` submission."""
    order, values = _rows(csv_path)
    probs = np.zeros((len(order), len(SUBTYPES)), dtype=np.float64)
    for i, image in enumerate(order):
        for j, subtype in enumerate(SUBTYPES):
            raw, line = values[image][subtype]
            try:
                probs[i, j] = float(raw)
            except ValueError:
                raise RadlabDataError(csv_path, f"probability {raw!r} is not a number", line) from None
            if not 0.0 <= probs[i, j] <= 1.0:
                raise RadlabDataError(csv_path, f"probability {raw!r} is outside [0, 1]", line)
    return order, probs


def write_submission(path: str | Path, images: Sequence[str], probs: np.ndarray) -> None:
    """`ID,Label` with six rows per image, probabilities clipped to [1e-5, 1 - 1e-5], atomically."""
    clipped = np.clip(np.asarray(probs, dtype=np.float64), CLIP, 1 - CLIP)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for image, row in zip(images, clipped, strict=True):
        writer.writerows((f"{image}_{subtype}", f"{p:.6f}") for subtype, p in zip(SUBTYPES, row, strict=True))
    atomic_write_text(path, buffer.getvalue())


class _Slice(Protocol):
    @property
    def patient(self) -> str: ...
    @property
    def study(self) -> str: ...
    @property
    def series(self) -> str: ...


def series_key(info: _Slice) -> str:
    """The series a slice belongs to, from its headers (PatientID / StudyInstanceUID / SeriesInstanceUID, the
    grouping of data.sequences): what `predict --shard` keeps whole, as the sequence model reads series whole."""
    return f"{info.patient}/{info.study}/{info.series}"


def merge(input_dir: Path, output: Path, shards: Sequence[Path]) -> str:
    """`radlab ich merge`: the submissions of `predict --shard` as one, the header once and six rows per
    image in the input's order. Every series must come from its own shard; a slice missing from a shard
    that holds its series is one the unsharded run would have left out too (unreadable pixels)."""
    from radlab.core.infer.shard import ShardFile, keyed_lines, merge_shards
    from radlab.core.io.dicom import list_dicom_folder
    from radlab.tasks.ich.data import read_metadata

    infos, _ = read_metadata(list_dicom_folder(input_dir))
    unit = {info.image: series_key(info) for info in infos}

    def read(path: Path, expected: list[str]) -> ShardFile:
        part = keyed_lines(path, header_lines=1, key=lambda line: (split_id(line.split(",", 1)[0]) or ("",))[0])
        present = {unit.get(image) for image in part.rows}
        missing = [unit[image] for image in expected if unit[image] not in present]
        if missing:
            raise RadlabDataError(path, f"lacks series {missing[0]!r} (and every slice of it)")
        return part

    rows = [(info.image, unit[info.image]) for info in infos]
    count = merge_shards(rows, shards, output, read, "series", optional=lambda _: True)  # read checks series
    return f"{count} images from {len(shards)} shard files -> {output}"
