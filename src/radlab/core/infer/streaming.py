"""Stream a dataset through a model in batches: bounded memory whatever the input size.

A bounded prefetching DataLoader decodes the next batches while the model runs; results leave as soon as
each batch is done, so memory holds a few batches, never the whole input (the seed's CodaLab users had to
request 32 GB or fall back to batch size 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from torch import nn
from torch.utils.data import DataLoader, Dataset

from radlab.core.console import interactive, stderr


@dataclass
class PredictedBatch:
    """Probabilities for one batch: `indices` into the dataset, `probs` (B, K), `errors` ("" when fine)."""

    indices: np.ndarray
    probs: np.ndarray
    errors: list[str]


def pick_device(name: str = "auto") -> torch.device:
    """ "auto" -> the first CUDA GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def iterate_batches(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int = 2,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    pin_memory: bool = False,
    description: str = "predicting",
) -> Iterator[Any]:
    """Batches of `dataset` in order from a bounded prefetching loader, with a progress bar on a terminal.

    Items and batches are dicts with an "index" entry (its length advances the bar)."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        prefetch_factor=2 if num_workers > 0 else None,
        pin_memory=pin_memory,
        collate_fn=collate_fn,
    )
    with _progress(len(dataset), description) as (progress, task):  # type: ignore[arg-type]  # map-style: has len
        for batch in loader:
            yield batch
            progress.advance(task, len(batch["index"]))


def stream_predictions(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 16,
    num_workers: int = 2,
    device: torch.device | None = None,
    tta_hflip: bool = False,
    description: str = "predicting",
) -> Iterator[PredictedBatch]:
    """Yield sigmoid probabilities batch by batch (mean over the image and its mirror when `tta_hflip`).

    Items must be dicts with "index", "image" (uint8 or float, C x H x W) and "error".
    """
    device = device or pick_device()
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    batches = iterate_batches(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        description=description,
    )
    with torch.inference_mode():
        for batch in batches:
            images = batch["image"].to(device, non_blocking=True)
            if images.ndim == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            probs = torch.sigmoid(model(images).float())
            if tta_hflip:
                probs = (probs + torch.sigmoid(model(images.flip(-1)).float())) / 2
            yield PredictedBatch(batch["index"].numpy(), probs.cpu().numpy(), list(batch["error"]))


class _progress:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, total: int, description: str) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=stderr,
            transient=True,
            disable=not interactive(),
        )
        self.task = self.progress.add_task(description, total=total)

    def __enter__(self) -> tuple[Progress, TaskID]:
        self.progress.start()
        return self.progress, self.task

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
