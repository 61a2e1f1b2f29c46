"""MURA splits as tables and as a Dataset (one item per image; labels from the CSV, never the path), and the
pooling of image probabilities into study probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from radlab.core.console import warn
from radlab.core.engine.folds import stratified_folds
from radlab.core.errors import RadlabDataError
from radlab.core.io import resolve_under
from radlab.core.io.cache import cached_image_dataset
from radlab.core.io.dataset import ImageFileDataset
from radlab.core.transforms import ImageTransform, build_image_transform
from radlab.core.transforms.image import ResizeMode
from radlab.tasks.mura.formats import (
    STUDY_TYPES,
    ImagePath,
    read_image_paths,
    read_labeled_studies,
    resolve_data_root,
    split_csvs,
    study_type,
)

UNKNOWN_TYPE = len(STUDY_TYPES)


@dataclass
class StudyGroups:
    """Images grouped into studies in first-seen order."""

    images: list[ImagePath]
    image_study: np.ndarray
    studies: list[str]

    @property
    def study_types(self) -> list[str | None]:
        return [study_type(s) for s in self.studies]

    @property
    def study_type_ids(self) -> np.ndarray:
        return np.array([type_id(t) for t in self.study_types], dtype=np.int64)


@dataclass
class MuraSplit(StudyGroups):
    """A labelled split: StudyGroups plus one 0/1 label per study."""

    study_labels: np.ndarray

    @property
    def image_labels(self) -> np.ndarray:
        return self.study_labels[self.image_study]

    @property
    def study_patients(self) -> list[str]:
        """The patient of each study (`.../XR_WRIST/patient00001/study1_positive/` -> `patient00001`; one
        patient may have studies of several body parts), the group a k-fold split must not cut."""
        return [study.rstrip("/").split("/")[-2] for study in self.studies]

    def subset(self, studies: Sequence[int]) -> MuraSplit:
        """The split restricted to `studies` (indices), images and studies kept in their order."""
        chosen = np.zeros(len(self.studies), dtype=bool)
        chosen[np.asarray(studies, dtype=np.int64)] = True
        renumber = np.cumsum(chosen) - 1
        kept = np.flatnonzero(chosen[self.image_study])
        return MuraSplit(
            [self.images[i] for i in kept],
            renumber[self.image_study[kept]],
            [s for s, keep in zip(self.studies, chosen, strict=True) if keep],
            self.study_labels[chosen],
        )


def fold_split(data_root: str | Path, folds: int, fold: int, seed: int) -> tuple[list[int], list[int]]:
    """(training studies, held-out studies) of the train split: fold `fold` of `folds`, grouped by patient
    and stratified on the study label."""
    split = load_split(data_root, "train")
    patients = np.unique(split.study_patients, return_inverse=True)[1]
    kept, held_out = stratified_folds(split.study_labels, folds, seed, patients)[fold]
    return kept.tolist(), held_out.tolist()


def type_id(name: str | None) -> int:
    return STUDY_TYPES.index(name) if name in STUDY_TYPES else UNKNOWN_TYPE


def group_studies(images: Sequence[ImagePath]) -> StudyGroups:
    """Assign every image to its study (folder + `/`), studies numbered in first-seen order."""
    index: dict[str, int] = {}
    image_study = np.empty(len(images), dtype=np.int64)
    for i, image in enumerate(images):
        image_study[i] = index.setdefault(image.study, len(index))
    return StudyGroups(list(images), image_study, list(index))


def load_split(data_root: str | Path, split: str) -> MuraSplit:
    """Join `{split}_image_paths.csv` to `{split}_labeled_studies.csv` on the study key."""
    root = resolve_data_root(data_root)
    paths_csv, labels_csv = split_csvs(root, split)
    groups = group_studies(read_image_paths(paths_csv))
    labels: dict[str, int] = {}
    for row in read_labeled_studies(labels_csv):
        if labels.setdefault(row.study, row.label) != row.label:
            raise RadlabDataError(labels_csv, f"study {row.study} is labelled both 0 and 1", row.line)
    study_labels = np.empty(len(groups.studies), dtype=np.int64)
    for s, study in enumerate(groups.studies):
        if study not in labels:
            line = next(image.line for image in groups.images if image.study == study)
            raise RadlabDataError(paths_csv, f"study {study} has no label in {labels_csv.name}", line)
        study_labels[s] = labels[study]
    unused = len(set(labels) - set(groups.studies))
    if unused:
        warn(f"{labels_csv}: {unused} labelled studies have no image in {paths_csv.name}")
    return MuraSplit(groups.images, groups.image_study, groups.studies, study_labels)


class MuraDataset(ImageFileDataset):
    """Images of one MURA split with their study's label and type: the TorchXRayVision-style constructor
    `(data_root, split, transform)` every radlab task dataset shares."""

    def __init__(
        self,
        data_root: str | Path,
        split: Literal["train", "valid"] | str = "train",
        transform: ImageTransform | None = None,
        *,
        cache_dir: str | Path | None = None,
        resize: ResizeMode = "stretch",
        augment: bool = False,
        studies: Sequence[int] | None = None,
    ) -> None:
        root = resolve_data_root(data_root)
        self.split = load_split(root, split)
        if studies is not None:  # one side of a k-fold split of this split's studies
            self.split = self.split.subset(studies)
        transform = transform or build_image_transform(320)
        paths_csv = split_csvs(root, split)[0]
        files = [
            resolve_under(root, image.path, allow_outside=False, source=paths_csv, line=image.line)
            for image in self.split.images
        ]
        super().__init__(files, transform, transform.output_shape)
        self.labels = self.split.image_labels.astype(np.float32)
        self.type_ids = self.split.study_type_ids[self.split.image_study]
        # With a cache, files are decoded and resized once; `transform` (random steps when `augment`) then
        # runs on the cached array, where its resize to the same size is a no-op.
        self.cached = (
            cached_image_dataset(
                self.paths, cache_dir, transform.size, resize, transform if augment else None, workers=2
            )
            if cache_dir is not None
            else None
        )

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]  # adds label and type
        item = self.cached[index] if self.cached is not None else super().__getitem__(index)
        sample: dict[str, Any] = dict(item)
        sample["label"] = self.labels[index]
        sample["type"] = self.type_ids[index]
        return sample


def class_weights(split: MuraSplit, mode: str) -> np.ndarray:
    """Per study type (rows ELBOW..WRIST, then unknown) the BCE weights [w_negative, w_positive].

    The paper: w_pos = N_T / (A_T + N_T), w_neg = A_T / (A_T + N_T) with A_T, N_T the abnormal and normal
    training images of type T. "global" uses all types' counts; "none" weighs every image 1. A type
    without both classes falls back to the global weights.
    """
    weights = np.ones((UNKNOWN_TYPE + 1, 2), dtype=np.float64)
    if mode == "none":
        return weights
    labels, types = split.image_labels, split.study_type_ids[split.image_study]
    overall = _weight_pair(labels)
    weights[:] = overall
    if mode == "per_type":
        for t in range(UNKNOWN_TYPE):
            of_type = labels[types == t]
            if 0 < of_type.sum() < of_type.size:
                weights[t] = _weight_pair(of_type)
    return weights


def _weight_pair(labels: np.ndarray) -> tuple[float, float]:
    abnormal = float(labels.sum())
    total = float(labels.size)
    if total == 0 or abnormal in (0.0, total):
        return (1.0, 1.0)
    return (abnormal / total, (total - abnormal) / total)


def split_statistics(split: MuraSplit, weights: np.ndarray) -> dict[str, Any]:
    """Counts per study type, the loss weights and the majority label (predict's fallback for a study
    with no readable image)."""
    per_type: dict[str, Any] = {}
    study_type_ids = split.study_type_ids
    for t, name in enumerate((*STUDY_TYPES, "UNKNOWN")):
        study_mask = study_type_ids == t
        image_mask = study_mask[split.image_study]
        abnormal = int(split.study_labels[study_mask].sum())
        studies = int(study_mask.sum())
        if studies == 0:
            continue
        per_type[name] = {
            "studies": studies,
            "abnormal_studies": abnormal,
            "images": int(image_mask.sum()),
            "abnormal_images": int(split.image_labels[image_mask].sum()),
            "loss_weights": {"negative": float(weights[t, 0]), "positive": float(weights[t, 1])},
            "majority_label": int(abnormal * 2 > studies),
        }
    prevalence = float(split.study_labels.mean()) if len(split.study_labels) else 0.0
    return {
        "studies": len(split.studies),
        "images": len(split.images),
        "abnormal_prevalence": prevalence,
        "majority_label": int(prevalence > 0.5),
        "types": per_type,
    }


Pooling = Literal["mean", "max"]


class StudyPooler:
    """Running mean (the paper) or max of image probabilities per study; unreadable images are left out."""

    def __init__(self, n_studies: int, pooling: Pooling = "mean") -> None:
        if pooling not in ("mean", "max"):
            raise ValueError(f"unknown pooling {pooling!r}")
        self.pooling = pooling
        self.total = np.zeros(n_studies, dtype=np.float64)
        self.count = np.zeros(n_studies, dtype=np.int64)

    def add(self, studies: np.ndarray, probs: np.ndarray, readable: np.ndarray | None = None) -> None:
        """Add one batch: study index and probability per image, and which images decoded."""
        studies = np.asarray(studies, dtype=np.int64)
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        if readable is not None:
            keep = np.asarray(readable, dtype=bool)
            studies, probs = studies[keep], probs[keep]
        if self.pooling == "mean":
            np.add.at(self.total, studies, probs)
        else:
            np.maximum.at(self.total, studies, probs)
        np.add.at(self.count, studies, 1)

    @property
    def has_image(self) -> np.ndarray:
        """Studies with at least one readable image."""
        return self.count > 0

    def probabilities(self) -> np.ndarray:
        """Pooled probability per study (NaN for a study with no readable image)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled = self.total / self.count if self.pooling == "mean" else self.total.copy()
        pooled[self.count == 0] = np.nan
        return pooled
