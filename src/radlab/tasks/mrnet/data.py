"""MRNet exams as a Dataset: one item per exam holding the series of the requested planes.

A batch packs the slices of all its exams per plane into one tensor with their counts, so a network sees
many exams in one forward pass and a segment max pools each exam (no batch-size-1 loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from radlab.core.errors import RadlabDataError
from radlab.core.io.volumes import read_volume
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet.formats import PLANES, read_split_labels, resolve_data_root, volume_path

MAX_SERIES_SHAPE = (256, 1024, 1024)
"""Slices, height, width beyond which a series is refused before it is read: MRNet's own series are at most
about 60 x 256 x 256, so these bounds leave room for other knee protocols while keeping one series' float
copy for the network under a few GiB."""


def read_series(path: str | Path) -> np.ndarray:
    """One MRNet series (S, H, W) uint8, its shape checked against MAX_SERIES_SHAPE before it is read."""
    return read_volume(path, max_shape=MAX_SERIES_SHAPE)


class SeriesDataset(Dataset[dict[str, Any]]):
    """Items {"index", "series": {plane: uint8 (S, 1, H, W)}, "errors": {plane: str}[, "labels": (3,)]}.

    A path of None (the plane was not given) or an unreadable file yields one black slice and the reason in
    "errors"; the exam is then predicted from its other planes.
    """

    def __init__(
        self,
        paths: dict[str, Sequence[Path | None]],
        transform: VolumeTransform,
        labels: np.ndarray | None = None,
    ) -> None:
        self.paths = paths
        self.transform = transform
        self.labels = labels
        self.length = len(next(iter(paths.values())))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        series, errors = {}, {}
        for plane, paths in self.paths.items():
            path = paths[index]
            try:
                if path is None:
                    raise RadlabDataError(f"exam {index}", f"no {plane} series given")
                series[plane] = self.transform(read_series(path))
                errors[plane] = ""
            except (RadlabDataError, MemoryError) as exc:
                series[plane] = torch.zeros((1, 1, self.transform.size, self.transform.size), dtype=torch.uint8)
                errors[plane] = str(exc) if isinstance(exc, RadlabDataError) else f"{path}: not enough memory"
        item: dict[str, Any] = {"index": index, "series": series, "errors": errors}
        if self.labels is not None:
            item["labels"] = torch.as_tensor(self.labels[index], dtype=torch.float32)
        return item


class MRNetDataset(SeriesDataset):
    """The exams of an MRNet split (`train`, `valid`) with their three labels: the `(data_root, split,
    transform)` constructor every radlab task dataset shares; `planes` and `ids` narrow it down."""

    def __init__(
        self,
        data_root: str | Path,
        split: str = "train",
        transform: VolumeTransform | None = None,
        planes: Sequence[str] = PLANES,
        ids: Sequence[str] | None = None,
    ) -> None:
        root = resolve_data_root(data_root)
        all_ids, labels = read_split_labels(root, split)
        if ids is not None:
            position = {exam_id: i for i, exam_id in enumerate(all_ids)}
            labels = labels[[position[i] for i in ids]]
            all_ids = list(ids)
        self.ids = all_ids
        paths: dict[str, Sequence[Path | None]] = {
            plane: [volume_path(root, split, plane, i) for i in all_ids] for plane in planes
        }
        super().__init__(paths, transform or VolumeTransform(256), labels)


def collate_exams(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pack the slices of every exam, per plane: {"index", ["labels"], "planes": {plane: {"slices" (N, 1, H, W),
    "lengths" (B,), "readable" (B,)}}, "errors": {plane: [str]}}."""
    batch: dict[str, Any] = {"index": torch.tensor([item["index"] for item in items]), "planes": {}, "errors": {}}
    if "labels" in items[0]:
        batch["labels"] = torch.stack([item["labels"] for item in items])
    for plane in items[0]["series"]:
        series = [item["series"][plane] for item in items]
        errors = [item["errors"][plane] for item in items]
        batch["planes"][plane] = {
            "slices": torch.cat(series),
            "lengths": torch.tensor([len(s) for s in series]),
            "readable": torch.tensor([not e for e in errors]),
        }
        batch["errors"][plane] = errors
    return batch
