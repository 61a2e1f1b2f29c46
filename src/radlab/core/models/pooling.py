"""Pooling over variable-length groups packed along the batch axis (slices of several series at once)."""

from __future__ import annotations

import torch


def segment_index(lengths: torch.Tensor) -> torch.Tensor:
    """[2, 3] -> [0, 0, 1, 1, 1]: the group of each packed row."""
    return torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)


def segment_max(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Row-wise max of each group of consecutive rows: (N, F) with group sizes (B,) -> (B, F)."""
    index = segment_index(lengths).unsqueeze(1).expand_as(values)
    out = values.new_full((len(lengths), values.shape[1]), float("-inf"))
    return out.scatter_reduce(0, index, values, reduce="amax", include_self=True)


def segment_mean(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Row-wise mean of each group of consecutive rows: (N, F) with group sizes (B,) -> (B, F)."""
    index = segment_index(lengths).unsqueeze(1).expand_as(values)
    out = values.new_zeros((len(lengths), values.shape[1]))
    return out.scatter_add(0, index, values) / lengths.clamp(min=1).unsqueeze(1).to(values.dtype)
