"""DataLoaders for training and validation, set up the same way for every task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from radlab.core.transforms import seed_worker_transforms


def epoch_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int,
    shuffle: bool,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """Shuffled with the last partial batch dropped (batch norm cannot take a batch of one) for training,
    in order for validation; persistent workers, each reseeding its augmentation; pinned memory on a GPU."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=shuffle and len(dataset) > batch_size,  # type: ignore[arg-type]  # map-style: has a length
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        worker_init_fn=seed_worker_transforms,
        collate_fn=collate_fn,
        pin_memory=torch.cuda.is_available(),
    )
