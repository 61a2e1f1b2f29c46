"""Optimiser set-ups the published recipes share, in the form Lightning's configure_optimizers returns."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig

from radlab.core.engine.config import PlateauOptimConfig


def adam_with_plateau(
    parameters: Iterable[torch.nn.Parameter], optim: PlateauOptimConfig, monitor: str = "val/loss"
) -> OptimizerLRSchedulerConfig:
    """Adam, with the learning rate multiplied by `plateau_factor` when `monitor` (a loss) stops improving."""
    optimizer = torch.optim.Adam(parameters, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=optim.plateau_factor, patience=optim.plateau_patience
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": monitor, "interval": "epoch"}}
