"""ICH's data: DICOM headers into a table and slices into series (Patient / Study / Series, sorted by
ImagePositionPatient or by z), the labelled training table and its folds (the recipe's rule or stratified),
slices as three-window uint8 images with their six labels, and series as embedding sequences.

Headers are read first (no pixels): a file whose header cannot be read is skipped with its reason logged
and counted; a file whose pixels turn out to be corrupt is found, and dropped, when it is decoded.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from radlab.core.console import warn
from radlab.core.engine.folds import stratified_folds
from radlab.core.errors import RadlabConfigError, RadlabDataError
from radlab.core.io.cache import PreprocessCache
from radlab.core.io.dicom import header_value, read_dicom, read_header
from radlab.core.transforms.windowing import (
    ICH_WINDOWS,
    FixMode,
    resize_square,
    stored_and_rescale,
    windowed_square,
)
from radlab.tasks.ich import IchConfig, SliceOrder
from radlab.tasks.ich.formats import TRAIN_CSV, TRAIN_IMAGES, read_labels

NO_POSITION: tuple[float, float, float] = (float("nan"), float("nan"), float("nan"))


@dataclass(frozen=True)
class SliceInfo:
    image: str
    path: Path
    patient: str
    study: str
    series: str
    z: float
    position: tuple[float, float, float] = NO_POSITION
    """ImagePositionPatient (x, y, z); NaN where the header has none."""


def _position(ds: Any) -> tuple[float, float, float]:
    """ImagePositionPatient as three floats (NaN when absent or short); unparseable values raise ValueError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        position = ds.get("ImagePositionPatient")
    if position is None or len(position) < 3:
        return NO_POSITION
    return float(position[0]), float(position[1]), float(position[2])


def read_metadata(paths: Sequence[Path], strict: bool = False) -> tuple[list[SliceInfo], list[tuple[Path, str]]]:
    """(slices with readable headers, [(path, reason)] for the others, each warned about); with `strict` the
    first unreadable header is an error instead."""
    slices, skipped = [], []
    for path in paths:
        try:
            ds = read_header(path)
            xyz = _position(ds)
            slices.append(
                SliceInfo(
                    image=path.stem,
                    path=path,
                    patient=str(header_value(ds, "PatientID", "")),
                    study=str(header_value(ds, "StudyInstanceUID", "")),
                    series=str(header_value(ds, "SeriesInstanceUID", "")),
                    z=xyz[2],
                    position=xyz,
                )
            )
        except RadlabDataError as exc:
            skipped.append((path, exc.reason))
        except (TypeError, ValueError) as exc:
            skipped.append((path, f"unreadable ImagePositionPatient ({exc})"))
    if strict and skipped:
        raise RadlabDataError(skipped[0][0], f"{skipped[0][1]} (--strict)")
    for path, reason in skipped:
        warn(f"{path}: {reason}; skipped")
    return slices, skipped


def slice_key(info: SliceInfo, order: SliceOrder = "z") -> tuple[Any, ...]:
    """What a slice sorts on within its series: ImagePositionPatient (x, y, z) lexicographically, as the
    recipe's trainlstm.py, or z alone; a slice without a position goes last; ties go by image id."""
    values = info.position if order == "position" else (info.z,)
    missing = any(np.isnan(v) for v in values)
    return (missing, *(0.0 if missing else v for v in values), info.image)


def sequences(slices: Sequence[SliceInfo], order: SliceOrder = "z") -> list[list[int]]:
    """Indices of `slices` grouped by (patient, study, series), each group sorted by `slice_key`."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, info in enumerate(slices):
        groups.setdefault((info.patient, info.study, info.series), []).append(i)
    return [sorted(groups[key], key=lambda i: slice_key(slices[i], order)) for key in sorted(groups)]


@dataclass
class TrainingTable:
    """Labelled images whose header reads: header info, labels, and the files skipped."""

    infos: list[SliceInfo]
    labels: np.ndarray
    skipped: list[tuple[Path, str]]
    order: SliceOrder = "z"

    def series(self, rows: list[int], readable: np.ndarray) -> list[list[int]]:
        """Series of the readable images among `rows` (positions within `rows`), each in the table's order."""
        groups = sequences([self.infos[i] for i in rows], self.order)
        return [kept for group in groups if (kept := [k for k in group if readable[k]])]


def read_training_table(root: Path, order: SliceOrder = "z") -> TrainingTable:
    """stage_2_train.csv joined to the headers of its images (those whose header does not read are left out);
    its series are sorted by `order` (data.slice_order)."""
    images, labels = read_labels(root / TRAIN_CSV)
    infos, skipped = read_metadata([root / TRAIN_IMAGES / f"{image}.dcm" for image in images])
    position = {image: i for i, image in enumerate(images)}
    return TrainingTable(infos, labels[[position[info.image] for info in infos]], skipped, order)


def original_folds(images: Sequence[str], patients: Sequence[str], folds: int) -> np.ndarray:
    """The recipe's fold of each row (prepare_folds.py): the table sorted by image id (its pivot on Image),
    each patient's fold the position of its first row in that order, mod `folds`; not stratified."""
    first: dict[str, int] = {}
    for position, row in enumerate(sorted(range(len(images)), key=lambda i: images[i])):
        first.setdefault(patients[row], position)
    return np.array([first[patient] % folds for patient in patients], dtype=np.int64)


def fold_rows(table: TrainingTable, config: IchConfig) -> tuple[list[int], list[int]]:
    """(kept rows, held-out rows) of fold `train.fold` of `train.folds`, always grouped by patient: by the
    recipe's rule (`train.fold_rule` "original", see `original_folds`) or stratified on "any" (seeded)."""
    train = config.train
    if train.fold >= train.folds:
        raise RadlabConfigError(f"train.fold must be below train.folds ({train.folds})")
    patients = [info.patient for info in table.infos]
    if train.fold_rule == "original":
        fold = original_folds([info.image for info in table.infos], patients, train.folds)
        held_out = np.flatnonzero(fold == train.fold)
        if not len(held_out):
            raise RadlabConfigError(
                f"fold {train.fold} of {train.folds} holds no patient under train.fold_rule=original "
                "(too few patients); use fewer folds or train.fold_rule=stratified"
            )
        return np.flatnonzero(fold != train.fold).tolist(), held_out.tolist()
    groups = np.unique(patients, return_inverse=True)[1]
    kept, held_out = stratified_folds(table.labels[:, 5], train.folds, train.seed, groups)[train.fold]
    return kept.tolist(), held_out.tolist()


def load_windows(path: Path, size: int, crop: bool = True, fix: FixMode = "auto") -> np.ndarray:
    """A DICOM slice -> (size, size, 3) uint8: brain, subdural and soft-tissue windows."""
    ds, stored = read_dicom(path)
    if stored.ndim != 2:
        raise RadlabDataError(path, f"expected one grayscale slice, got pixel shape {stored.shape}")
    values, slope, intercept = stored_and_rescale(ds, stored, fix)
    square, _ = windowed_square(values, slope, intercept, ICH_WINDOWS, crop)
    return resize_square(square, size)


class SliceTransform:
    """uint8 (S, S, 3) -> uint8 tensor (3, S, S); training adds flip, shift-scale-rotate and transpose."""

    def __init__(self, train: bool = False, augment: Any = None, seed: int | None = None) -> None:
        steps: list[A.BasicTransform] = []
        if train and augment is not None:
            steps = [
                A.HorizontalFlip(p=augment.hflip),
                A.Affine(
                    translate_percent=(-augment.shift, augment.shift),
                    scale=(1 - augment.scale, 1 + augment.scale),
                    rotate=(-augment.rotate_deg, augment.rotate_deg),
                    border_mode=cv2.BORDER_REPLICATE,
                    p=augment.shift_scale_rotate,
                ),
                A.Transpose(p=augment.transpose),
            ]
        self.pipeline = A.Compose(steps, seed=seed)

    def set_random_seed(self, seed: int | None) -> None:
        self.pipeline.set_random_seed(seed)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        out = self.pipeline(image=image)["image"] if self.pipeline.transforms else image
        return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


class SliceDataset(Dataset[dict[str, Any]]):
    """Items {"index", "image" (3, S, S) uint8, "labels" (6,), "error"}; an unreadable slice is black and
    flagged in "error"."""

    def __init__(
        self,
        paths: Sequence[Path],
        size: int,
        transform: SliceTransform | None = None,
        labels: np.ndarray | None = None,
        crop: bool = True,
        fix: FixMode = "auto",
        cache_dir: str | Path | None = None,
    ) -> None:
        self.paths = list(paths)
        self.size = size
        self.transform = transform or SliceTransform()
        self.labels = labels
        self.crop = crop
        self.fix = fix
        self.cache: PreprocessCache | None = None
        if cache_dir is not None:
            decode = WindowedSlice(size, crop, fix)
            self.cache = PreprocessCache(cache_dir, decode.params, (size, size, 3))
            self.slots, self.errors = self.cache.ensure(self.paths, decode, workers=2)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            image = self.transform(self._windows(index))
            error = ""
        except RadlabDataError as exc:
            image, error = torch.zeros((3, self.size, self.size), dtype=torch.uint8), str(exc)
        labels = self.labels[index] if self.labels is not None else np.zeros(6)
        return {"index": index, "image": image, "labels": torch.as_tensor(labels, dtype=torch.float32), "error": error}

    def _windows(self, index: int) -> np.ndarray:
        if self.cache is None:
            return load_windows(self.paths[index], self.size, self.crop, self.fix)
        slot = int(self.slots[index])
        if slot < 0:
            raise RadlabDataError(self.paths[index], self.errors[index].split(": ", 1)[-1])
        return np.array(self.cache.array(slot))


class WindowedSlice:
    """decode(path) for the preprocessing cache: load_windows with fixed parameters (picklable)."""

    def __init__(self, size: int, crop: bool = True, fix: FixMode = "auto") -> None:
        self.size, self.crop, self.fix = size, crop, fix
        windows = [[w.center, w.width] for w in ICH_WINDOWS]
        self.params = {"kind": "ct-windows", "size": size, "crop": crop, "fix": fix, "windows": windows, "version": 1}

    def __call__(self, path: str) -> np.ndarray:
        return load_windows(Path(path), self.size, self.crop, self.fix)


def sequence_features(embeddings: np.ndarray) -> np.ndarray:
    """(T, E) slice embeddings of one series in z order -> (T, 3E): [e, e - previous, e - next] (zero
    differences at the ends)."""
    previous = np.vstack([embeddings[:1], embeddings[:-1]])
    following = np.vstack([embeddings[1:], embeddings[-1:]])
    return np.concatenate([embeddings, embeddings - previous, embeddings - following], axis=1).astype(np.float32)


class SequenceDataset(Dataset[dict[str, Any]]):
    """One item per series: {"index", "features" (T, 3E), "labels" (T, 6), "rows" (T,) embedding rows}."""

    def __init__(self, embeddings: np.ndarray, series: Sequence[Sequence[int]], labels: np.ndarray | None = None):
        self.embeddings = embeddings
        self.series = [list(s) for s in series if len(s)]
        self.labels = labels

    def __len__(self) -> int:
        return len(self.series)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rows = self.series[index]
        labels = self.labels[rows] if self.labels is not None else np.zeros((len(rows), 6))
        return {
            "index": index,
            "features": torch.from_numpy(sequence_features(self.embeddings[rows])),
            "labels": torch.as_tensor(labels, dtype=torch.float32),
            "rows": torch.as_tensor(rows),
        }


def collate_sequences(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad series to the longest (zeros after the end) with a mask of real slices."""
    lengths = torch.tensor([len(item["rows"]) for item in items])
    longest = int(lengths.max())
    width = items[0]["features"].shape[1]
    features = torch.zeros((len(items), longest, width))
    labels = torch.zeros((len(items), longest, 6))
    rows = torch.full((len(items), longest), -1, dtype=torch.int64)
    for k, item in enumerate(items):
        n = len(item["rows"])
        features[k, :n], labels[k, :n], rows[k, :n] = item["features"], item["labels"], item["rows"]
    mask = torch.arange(longest)[None] < lengths[:, None]
    return {
        "index": torch.tensor([i["index"] for i in items]),
        "features": features,
        "labels": labels,
        "rows": rows,
        "lengths": lengths,
        "mask": mask,
    }
