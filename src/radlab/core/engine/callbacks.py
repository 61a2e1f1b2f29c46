"""Callbacks that keep the run directory current while training: history.csv and the best model."""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch

from radlab.core.console import info
from radlab.core.engine.recipe import Recipe
from radlab.core.engine.run_dir import RunDir
from radlab.core.io.atomic import atomic_write_text


class HistoryWriter(L.Callback):
    """Rewrites history.csv (one row per epoch) after every validation, before checkpoints are saved.

    Rows from an epoch that a resumed run repeats are replaced, so the file never holds an epoch twice;
    `publish` gets each row too (experiment tracking).
    """

    def __init__(self, path: Path, echo: bool = True, publish: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.path = path
        self.echo = echo
        self.publish = publish
        self._loss_sum = 0.0
        self._batches = 0
        self._started = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._loss_sum, self._batches, self._started = 0.0, 0, time.monotonic()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self._loss_sum += float(loss.detach())
            self._batches += 1

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        row: dict[str, Any] = {"epoch": trainer.current_epoch + 1}
        row["train/loss"] = self._loss_sum / self._batches if self._batches else float("nan")
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith("val/"):
                row[key] = float(value)
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        row["seconds"] = round(time.monotonic() - self._started, 2)
        self._write(row)
        if self.publish is not None:
            self.publish(row)
        if self.echo:
            info(_format_row(row, trainer.max_epochs))

    def _write(self, row: dict[str, Any]) -> None:
        write_history(self.path, [r for r in read_history(self.path) if int(r["epoch"]) < row["epoch"]] + [row])


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows (columns: the union of their keys, in first-seen order) as CSV, atomically."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def read_history(path: Path) -> list[dict[str, str]]:
    """Rows of a history.csv (empty when the file does not exist yet)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


class BestExporter(L.Callback):
    """When the monitored validation metric improves, asks the module to export weights and metrics.

    The run directory therefore always holds the best model so far, even if training is killed.
    """

    def __init__(self, run: RunDir, monitor: str, mode: str) -> None:
        self.run = run
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        score = float(value) if value is not None else float("nan")
        if self.best is not None and not self._improves(score):
            return
        self.best, self.best_epoch = score, trainer.current_epoch + 1
        if trainer.is_global_zero and isinstance(pl_module, Recipe):
            pl_module.export(self.run, self.best_epoch)

    def _improves(self, score: float) -> bool:
        if math.isnan(score):
            return False
        if self.best is None or math.isnan(self.best):
            return True
        return score > self.best if self.mode == "max" else score < self.best

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")
        self.best_epoch = state_dict.get("best_epoch")


def _format_row(row: dict[str, Any], max_epochs: int | None) -> str:
    parts = [f"epoch {row['epoch']}/{max_epochs}"]
    for key, value in row.items():
        if key in ("epoch", "seconds"):
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    parts.append(f"({row['seconds']:.1f} s)")
    return "  ".join(parts)


class ChannelsLast(L.Callback):
    """Puts the network's 4-D weights (and so its activations) in channels_last memory when fitting starts; the
    parameters stay the same objects, so the optimiser and resumed checkpoints are unaffected, and saved
    weights are made contiguous as always."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.to(memory_format=torch.channels_last)
