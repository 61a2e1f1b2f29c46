"""Optimiser set-ups the published recipes share, in the form Lightning's configure_optimizers returns."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig


def adam_with_plateau(
    parameters: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    factor: float = 0.1,
    patience: int = 1,
    monitor: str = "val/loss",
) -> OptimizerLRSchedulerConfig:
    """Adam, with the learning rate multiplied by `factor` when `monitor` (a loss) stops improving."""
    optimizer = torch.optim.Adam(parameters, lr=lr, betas=betas, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": monitor, "interval": "epoch"}}
