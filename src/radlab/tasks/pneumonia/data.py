"""Chest X-ray DICOMs with their boxes, resized and augmented so that boxes follow the image; the k-fold
split of the labelled patients that training validates on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from radlab.core.engine.folds import stratified_folds
from radlab.core.errors import RadlabConfigError, RadlabDataError
from radlab.core.io.cache import PreprocessCache
from radlab.core.io.dicom import read_dicom_image
from radlab.tasks.pneumonia import AugmentConfig, PneumoniaConfig
from radlab.tasks.pneumonia.formats import (
    CLASS_INFO,
    CLASSES,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    read_box_labels,
    read_class_info,
)


class DetectionTransform:
    """uint8 (H, W) image and (n, 4) x1y1x2y2 boxes -> uint8 (1, S, S) tensor and boxes in S pixels.

    Training adds one random affine (scale, rotation, shear, shift), a flip, gamma, noise and blur. Boxes are
    rotated with albumentations' "ellipse" method, which does not let them grow under rotation the way
    rotating their corners does."""

    def __init__(self, size: int, train: bool = False, augment: AugmentConfig | None = None, seed: int | None = None):
        steps: list[A.BasicTransform] = [A.Resize(size, size, interpolation=cv2.INTER_AREA)]
        if train and augment is not None:
            a = augment
            steps += [
                A.Affine(
                    scale=(2**-a.scale_log2, 2**a.scale_log2),
                    rotate=(-a.rotate_deg, a.rotate_deg),
                    shear=(-a.shear_deg, a.shear_deg),
                    translate_percent=(-a.shift_fraction, a.shift_fraction),
                    rotate_method="ellipse",
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    p=1.0,
                ),
                A.HorizontalFlip(p=a.hflip),
                A.RandomGamma(gamma_limit=(100 * 2**-a.gamma_log2, 100 * 2**a.gamma_log2), p=1.0),
                A.GaussNoise(std_range=(0.0, 0.04), p=a.noise),
                A.GaussianBlur(blur_limit=(3, 5), p=a.blur),
            ]
        params = A.BboxParams(format="pascal_voc", label_fields=["labels"], min_visibility=0.3, clip=True)
        self.pipeline = A.Compose(steps, bbox_params=params, seed=seed)
        self.size = size

    def set_random_seed(self, seed: int | None) -> None:
        self.pipeline.set_random_seed(seed)

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.pipeline(image=image, bboxes=boxes.reshape(-1, 4), labels=np.zeros(len(boxes), dtype=np.int64))
        kept = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
        kept = kept[(kept[:, 2] - kept[:, 0] >= 1) & (kept[:, 3] - kept[:, 1] >= 1)]
        return torch.from_numpy(np.ascontiguousarray(out["image"]))[None], torch.from_numpy(kept)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


class ResizedDicom:
    """decode(path) for the preprocessing cache: the display image resized as DetectionTransform resizes it,
    (S, S, 1) uint8, with the original (H, W) beside it (boxes are scaled from it). Picklable."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.params = {"kind": "pneumonia-dicom", "size": size, "interpolation": "area", "version": 1}

    def __call__(self, path: str) -> tuple[np.ndarray, dict[str, Any]]:
        pixels = read_dicom_image(path)
        resized = cv2.resize(pixels, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return resized[..., None], {"size": list(pixels.shape[:2])}


class DicomBoxDataset(Dataset[dict[str, Any]]):
    """Items {"index", "image" (1, S, S) uint8, "boxes" (n, 4) x1y1x2y2 in S pixels, "category", "size"
    (original H, W), "error"}; an unreadable file gives a black image, no box and the reason in "error".

    With `cache_dir`, each DICOM is decoded and resized once into a memory-mapped store (core/io/cache.py)
    and every later epoch or predict reads it from there; boxes are scaled to S pixels before augmenting."""

    def __init__(
        self,
        paths: Sequence[Path],
        transform: DetectionTransform,
        boxes: Sequence[np.ndarray] | None = None,
        categories: Sequence[int] | None = None,
        cache_dir: str | Path | None = None,
        cache_workers: int = 0,
    ) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.boxes = boxes
        self.categories = categories
        self.cache: PreprocessCache | None = None
        if cache_dir is not None:
            decode = ResizedDicom(transform.size)
            self.cache = PreprocessCache(cache_dir, decode.params, (transform.size, transform.size, 1))
            self.slots, self.errors = self.cache.ensure(self.paths, decode, workers=cache_workers)

    def __len__(self) -> int:
        return len(self.paths)

    def _pixels(self, index: int, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """(image, boxes in its pixels, original size): decoded now, or the cached resized image."""
        if self.cache is None:
            pixels = read_dicom_image(self.paths[index])
            return pixels, truth, pixels.shape[:2]
        slot = int(self.slots[index])
        if slot < 0:
            raise RadlabDataError(self.paths[index], self.errors[index].split(": ", 1)[-1])
        height, width = self.cache.meta[index]["size"]
        scale = np.array([self.transform.size / width, self.transform.size / height] * 2)
        return np.array(self.cache.array(slot))[..., 0], truth * scale, (height, width)

    def __getitem__(self, index: int) -> dict[str, Any]:
        truth = xywh_to_xyxy(self.boxes[index]) if self.boxes is not None else np.zeros((0, 4))
        try:
            pixels, truth, size = self._pixels(index, truth)
            image, boxes = self.transform(pixels, truth)
            error = ""
        except RadlabDataError as exc:
            image = torch.zeros((1, self.transform.size, self.transform.size), dtype=torch.uint8)
            boxes, size, error = torch.zeros((0, 4)), (0, 0), str(exc)
        category = self.categories[index] if self.categories is not None else -1
        return {"index": index, "image": image, "boxes": boxes, "category": category, "size": size, "error": error}


class PneumoniaDataset(DicomBoxDataset):
    """The labelled training patients (`stage_2_train_images/` with both label files): the `(data_root, split,
    transform)` constructor radlab's task datasets share; `ids` narrows it to a fold."""

    def __init__(
        self,
        data_root: str | Path,
        split: str = "train",
        transform: DetectionTransform | None = None,
        ids: Sequence[str] | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if split != "train":
            raise ValueError("only the train split carries labels; predict reads test folders directly")
        root = Path(data_root)
        labels = read_box_labels(root / TRAIN_LABELS)
        classes = read_class_info(root / CLASS_INFO)
        self.ids = list(ids) if ids is not None else list(labels)
        missing = [p for p in self.ids if p not in classes]
        if missing:
            raise RadlabDataError(root / CLASS_INFO, f"no class for {len(missing)} patients, e.g. {missing[0]}")
        self.truth = [labels[p] for p in self.ids]
        super().__init__(
            [root / TRAIN_IMAGES / f"{p}.dcm" for p in self.ids],
            transform or DetectionTransform(512),
            self.truth,
            [CLASSES.index(classes[p]) for p in self.ids],
            cache_dir,
        )


def fold_ids(root: Path, config: PneumoniaConfig) -> tuple[list[str], list[str]]:
    """(training ids, validation ids): fold `train.fold` of `train.folds`, stratified on the class."""
    patients = list(read_box_labels(root / TRAIN_LABELS))
    classes = read_class_info(root / CLASS_INFO)
    missing = [p for p in patients if p not in classes]
    if missing:
        raise RadlabDataError(root / CLASS_INFO, f"no class for {len(missing)} patients, e.g. {missing[0]}")
    train = config.train
    if train.fold >= train.folds:
        raise RadlabConfigError(f"train.fold must be below train.folds ({train.folds}), got {train.fold}")
    labels = [CLASSES.index(classes[p]) for p in patients]
    kept, held_out = stratified_folds(np.asarray(labels), train.folds, train.fold_seed)[train.fold]
    return [patients[i] for i in kept], [patients[i] for i in held_out]


def collate_detection(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images; keep boxes per image as torchvision targets."""
    return {
        "index": torch.tensor([item["index"] for item in items]),
        "image": torch.stack([item["image"] for item in items]),
        "targets": [
            {"boxes": item["boxes"], "labels": torch.zeros(len(item["boxes"]), dtype=torch.int64)} for item in items
        ],
        "category": torch.tensor([item["category"] for item in items]),
        "size": [tuple(item["size"]) for item in items],
        "error": [item["error"] for item in items],
    }
