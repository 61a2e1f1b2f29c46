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
from albumentations.augmentations.geometric import functional as fgeometric
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


class RecipeAffine(A.Affine):
    """One affine warp drawn as the recipe draws it (detection_dataset.py, level 20): scale 2^N(0, s) per axis,
    rotation N(0, r) and shear along x N(0, h) in degrees, the centre shifted by U(-f, f) of each side. The
    numbers come from the pipeline's seeded numpy generator; the warp is albumentations' Affine with them as
    fixed values (boxes rotated with the "ellipse" method, the shift in output pixels, not rounded)."""

    def __init__(self, augment: AugmentConfig) -> None:
        super().__init__(rotate_method="ellipse", border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0)
        self.sigmas = {
            "scale": augment.scale_sigma_log2,
            "rotate": augment.rotate_sigma_deg,
            "shear": augment.shear_sigma_deg,
        }
        self.shift = augment.shift_fraction

    def draw(self) -> dict[str, float]:
        """One set of parameters: scale factors, degrees, and shifts as fractions of the side."""
        rng, sigma = self.random_generator, self.sigmas
        return {
            "scale_x": float(2.0 ** rng.normal(0.0, sigma["scale"])),
            "scale_y": float(2.0 ** rng.normal(0.0, sigma["scale"])),
            "rotate": float(rng.normal(0.0, sigma["rotate"])),
            "shear": float(rng.normal(0.0, sigma["shear"])),
            "shift_x": float(rng.uniform(-self.shift, self.shift)),
            "shift_y": float(rng.uniform(-self.shift, self.shift)),
        }

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        drawn = self.draw()
        shape = params["shape"][:2]
        height, width = shape
        translate = {"x": drawn["shift_x"] * width, "y": drawn["shift_y"] * height}
        shear = {"x": -drawn["shear"], "y": 0.0}
        scale = {"x": drawn["scale_x"], "y": drawn["scale_y"]}

        def matrix(centre: tuple[float, float]) -> np.ndarray:
            return fgeometric.create_affine_transformation_matrix(translate, shear, scale, drawn["rotate"], centre)

        return {
            "rotate": drawn["rotate"],
            "scale": scale,
            "matrix": matrix(fgeometric.center(shape)),
            "bbox_matrix": matrix(fgeometric.center_bbox(shape)),
            "output_shape": shape,
            "drawn": drawn,
        }


class RecipeGamma(A.RandomGamma):
    """Gamma 2^N(0, sigma) from the pipeline's seeded numpy generator, as the recipe's crop ** 2^N(0, 0.25)."""

    def __init__(self, sigma_log2: float) -> None:
        super().__init__(p=1.0)
        self.sigma_log2 = sigma_log2

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return {"gamma": float(2.0 ** self.random_generator.normal(0.0, self.sigma_log2))}


class CoarseSaltAndPepper(A.ImageOnlyTransform):
    """imgaug's CoarseSaltAndPepper(p=amount, size_percent=size), which the recipe applies with probability
    0.1: a grid of (a x H) x (b x W) cells (a, b drawn from `size`, at least 3 cells a side) of which each is
    replaced with probability `amount`, scaled up to the image by nearest neighbour; the replaced pixels take
    values 255 x Beta(0.5, 0.5), drawn per pixel (mostly near black or white)."""

    def __init__(self, amount: float, size: tuple[float, float], p: float) -> None:
        super().__init__(p=p)
        self.amount = amount
        self.size = size

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        height, width = params["shape"][:2]
        rng = self.random_generator
        fraction_y, fraction_x = rng.uniform(*self.size, size=2)
        cells = rng.random((max(int(height * fraction_y), 3), max(int(width * fraction_x), 3))) < self.amount
        mask = cv2.resize(cells.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
        values = np.clip(255.0 * rng.beta(0.5, 0.5, size=int(mask.sum())), 0, 255).astype(np.uint8)
        return {"noise_mask": mask, "noise_values": values}

    def apply(self, img: np.ndarray, noise_mask: np.ndarray, noise_values: np.ndarray, **params: Any) -> np.ndarray:
        out = img.copy()
        if out.ndim == 3:
            out[noise_mask] = noise_values[:, None]
        else:
            out[noise_mask] = noise_values
        return out


def uniform_steps(a: AugmentConfig) -> list[A.BasicTransform]:
    """radlab's augmentation: uniform draws within the range fields; the blur kernel is 3 or 5 pixels."""
    steps: list[A.BasicTransform] = [
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
    ]
    if a.salt_pepper > 0:
        steps.append(CoarseSaltAndPepper(a.salt_pepper_amount, a.salt_pepper_size, p=a.salt_pepper))
    return [
        *steps,
        A.GaussNoise(std_range=(0.0, a.noise_std), p=a.noise),
        A.GaussianBlur(blur_limit=(3, 5), p=a.blur),
    ]


def recipe_steps(a: AugmentConfig) -> list[A.BasicTransform]:
    """The recipe's augmentation, in its order (detection_dataset.py): the affine warp, gamma, then imgaug's
    Sometimes(salt_pepper, coarse salt-and-pepper), Sometimes(blur, blur sigma U(0, blur_sigma)) and
    Sometimes(noise, noise std U(0, noise_std x 255)). A sigma below 0.01 would blur nothing visible, so the
    draw starts there (a kernel of sigma 0 is undefined)."""
    return [
        RecipeAffine(a),
        A.HorizontalFlip(p=a.hflip),
        RecipeGamma(a.gamma_sigma_log2),
        CoarseSaltAndPepper(a.salt_pepper_amount, a.salt_pepper_size, p=a.salt_pepper),
        A.GaussianBlur(blur_limit=0, sigma_limit=(0.01, a.blur_sigma), p=a.blur),
        A.GaussNoise(std_range=(0.0, a.noise_std), p=a.noise),
    ]


class DetectionTransform:
    """uint8 (H, W) image and (n, 4) x1y1x2y2 boxes -> uint8 (1, S, S) tensor and boxes in S pixels.

    Training adds one random affine (scale, rotation, shear, shift), a flip, gamma, noise and blur, drawn
    uniformly (radlab's) or as the recipe draws them (`augment.draws`). Boxes are rotated with albumentations'
    "ellipse" method, which does not let them grow under rotation the way rotating their corners does."""

    def __init__(self, size: int, train: bool = False, augment: AugmentConfig | None = None, seed: int | None = None):
        steps: list[A.BasicTransform] = [A.Resize(size, size, interpolation=cv2.INTER_AREA)]
        if train and augment is not None:
            steps += recipe_steps(augment) if augment.draws == "normal" else uniform_steps(augment)
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
