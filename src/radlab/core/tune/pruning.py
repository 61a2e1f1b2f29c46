"""Reporting the per-epoch validation metric to an Optuna trial and stopping training the trial prunes."""

from __future__ import annotations

import math
from typing import Any

import lightning as L


class PruningCallback(L.Callback):
    """After each validation epoch: report `monitor` to the trial; when the pruner says so, stop the Trainer
    cleanly (the run directory stays valid) and remember it, so the caller can raise TrialPruned.

    Steps count validation epochs across every Trainer of the trial, so a task that trains several networks
    in turn (MRNet's units) reports one rising series."""

    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial = trial
        self.monitor = monitor
        self.step = 0
        self.pruned = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if math.isfinite(value):
            self.trial.report(value, self.step)
        self.step += 1
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True
