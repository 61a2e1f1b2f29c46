"""One factory for Lightning Trainers: safetensors checkpoints (best + last), early stopping, history,
AMP on GPU, quiet logs off a terminal; deterministic and tracked as the training it belongs to asks."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar

from radlab.core.console import interactive
from radlab.core.engine.callbacks import BestExporter, ChannelsLast, HistoryWriter
from radlab.core.engine.checkpoint_io import SafetensorsCheckpointIO
from radlab.core.engine.config import EngineConfig
from radlab.core.engine.determinism import deterministic
from radlab.core.engine.run_dir import RunDir
from radlab.core.engine.tracking import current_tracker

Resolved = Literal["32-true", "16-mixed", "bf16-mixed", "64-true"]
"""A precision Lightning takes: what "auto" resolves to, or the one the config names."""


class SafetensorsModelCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose files are named *.safetensors (written by SafetensorsCheckpointIO)."""

    FILE_EXTENSION = ".safetensors"


_EXTRA_CALLBACKS: ContextVar[tuple[L.Callback, ...]] = ContextVar("radlab_extra_callbacks", default=())


@contextmanager
def extra_callbacks(*callbacks: L.Callback) -> Iterator[None]:
    """Every Trainer `build_trainer` makes inside this block also gets `callbacks` (tuning's pruner reaches
    the Trainers a task's train builds, however many, without each task passing it through)."""
    token = _EXTRA_CALLBACKS.set(_EXTRA_CALLBACKS.get() + callbacks)
    try:
        yield
    finally:
        _EXTRA_CALLBACKS.reset(token)


def resolve_precision(precision: str, accelerator: str) -> Resolved:
    """ "auto" means mixed precision on a GPU (bf16 where supported) and full fp32 elsewhere."""
    if precision != "auto":
        return cast(Resolved, precision)
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def build_trainer(
    engine: EngineConfig,
    run: RunDir,
    *,
    monitor: str,
    mode: str,
    callbacks: Sequence[L.Callback] = (),
) -> L.Trainer:
    """A Trainer that keeps `run` current: best/last checkpoints, history.csv, the best model exported."""
    progress = engine.progress
    if progress == "auto":
        progress = "bar" if interactive() else "lines"
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    best = SafetensorsModelCheckpoint(
        dirpath=run.checkpoints,
        filename=run.best_checkpoint.stem,
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    last = SafetensorsModelCheckpoint(
        dirpath=run.checkpoints,
        filename=run.last_checkpoint.stem,
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    tracker = current_tracker()
    if tracker is not None:
        tracker.logger_for(run)  # made now: a tracking server that cannot be reached stops the training at once
    publish = (lambda row: tracker.epoch(run, row)) if tracker is not None else None
    all_callbacks: list[L.Callback] = [
        HistoryWriter(run.history, echo=progress == "lines", publish=publish),
        BestExporter(run, monitor, mode),
        *callbacks,
        *_EXTRA_CALLBACKS.get(),
    ]
    if engine.early_stopping_patience is not None:
        all_callbacks.append(
            EarlyStopping(monitor=monitor, mode=mode, patience=engine.early_stopping_patience, check_finite=False)
        )
    if engine.channels_last:
        all_callbacks.append(ChannelsLast())
    if progress == "bar":
        all_callbacks.append(RichProgressBar(leave=True))
    all_callbacks += [best, last]
    return L.Trainer(
        max_epochs=engine.max_epochs,
        accelerator=engine.accelerator,
        devices=engine.devices,
        strategy=engine.strategy,
        num_nodes=engine.num_nodes,
        sync_batchnorm=engine.sync_batchnorm,
        precision=resolve_precision(engine.precision, engine.accelerator),
        plugins=[SafetensorsCheckpointIO()],
        callbacks=all_callbacks,
        logger=False,
        enable_progress_bar=progress == "bar",
        enable_model_summary=False,
        gradient_clip_val=engine.gradient_clip_val,
        limit_train_batches=engine.limit_train_batches,
        limit_val_batches=engine.limit_val_batches,
        deterministic=deterministic(engine.deterministic),
        default_root_dir=run.root,
        log_every_n_steps=10,
    )
