"""Validation under DDP: each rank scores its shard of the validation split; the epoch's metric needs the
whole split, so the per-rank results are gathered and the distributed sampler's padding dropped."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch


def gather_objects(module: L.LightningModule, value: Any) -> list[Any]:
    """[value of rank 0, value of rank 1, ...]; [value] in a single process. Values are picklable Python
    (NumPy arrays, dicts): results this run computed, never a file from outside."""
    trainer = module._trainer
    if trainer is None or trainer.world_size <= 1 or not torch.distributed.is_initialized():
        return [value]
    gathered: list[Any] = [None] * trainer.world_size
    torch.distributed.all_gather_object(gathered, value)
    return gathered


def gather_by_index(module: L.LightningModule, index: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """(index, *columns) of every rank, sorted by index with repeated indices (the sampler pads the last
    shard with items another rank also scores) kept once."""
    parts = gather_objects(module, (np.asarray(index), *(np.asarray(c) for c in columns)))
    index = np.concatenate([p[0] for p in parts])
    index, first = np.unique(index, return_index=True)
    return (index, *(np.concatenate([p[k + 1] for p in parts])[first] for k in range(len(columns))))


def gather_dict(module: L.LightningModule, found: dict[int, Any]) -> dict[int, Any]:
    """Every rank's {item index: result}, merged (a padded repeat keeps one entry)."""
    merged: dict[int, Any] = {}
    for part in gather_objects(module, found):
        merged.update(part)
    return merged
