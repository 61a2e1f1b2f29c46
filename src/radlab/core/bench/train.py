"""`radlab bench train --task T`: what a training step of the task's recipe costs in fp32 against bf16
autocast with channels_last memory, and whether the loader keeps up, measured in one run on synthetic data.

Each variant trains the task's preset (`paper` by default, random weights) through the same driver as
`radlab TASK train`, for `warmup + steps` batches of one epoch, in a scratch folder; the variants alternate
which goes first over `repeats`, and the speed-up is the median of the per-repeat ratios. A step's time is
split in two: computing (from the batch's arrival to the end of the optimiser step, the device synchronised)
and waiting (from the end of one step to the arrival of the next batch: the loader, the copy to the device
and Lightning's own bookkeeping). `data_wait_fraction` is the waiting share: near 0 the loader keeps up,
large means more loader processes (`--workers`) or a cache would pay. A task says how to shrink its run
(one network, one fold, a smaller batch on a CPU) in its BenchSpec's `train` plan (TrainPlan).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch

from radlab.core.bench.report import machine
from radlab.core.bench.spec import TrainPlan, bench_device
from radlab.core.console import info, warn
from radlab.core.errors import RadlabConfigError, RadlabError

if TYPE_CHECKING:
    from radlab.core.task import Task

VARIANTS: dict[str, tuple[str, ...]] = {
    "fp32": ("train.precision=32-true", "train.channels_last=false"),
    "bf16": ("train.precision=bf16-mixed", "train.channels_last=true"),
}
"""The precisions compared: the first is the reference the others' speed-up is measured against."""

ITEM_KEYS = ("index", "image", "error")
"""The batch entries whose length is the batch's item count (every task's training batch has one)."""


def batch_items(batch: Any) -> int:
    """How many training items a batch holds: the length of its item indices (or images)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, (list, tuple)) and batch:
        return batch_items(batch[0])
    if isinstance(batch, dict):
        for key in ITEM_KEYS:
            value = batch.get(key)
            if isinstance(value, torch.Tensor) and value.ndim > 0:
                return int(value.shape[0])
            if isinstance(value, (list, tuple)):
                return len(value)
    return 1


class StepTimer(L.Callback):
    """Seconds computing and seconds waiting for data of every training step after the first `warmup`, the
    items they trained on, and the first step's loss."""

    def __init__(self, warmup: int = 1) -> None:
        self.warmup = warmup
        self.compute_seconds = self.wait_seconds = 0.0
        self.items = self.steps = 0
        self.first_loss: float | None = None
        self._started = 0.0
        self._ended: float | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        self._started = time.perf_counter()
        if self._ended is not None and self.steps >= self.warmup:
            self.wait_seconds += self._started - self._ended

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        self._ended = time.perf_counter()
        if self.first_loss is None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            self.first_loss = float(loss) if isinstance(loss, torch.Tensor) else None
        self.steps += 1
        if self.steps > self.warmup:
            self.compute_seconds += self._ended - self._started
            self.items += batch_items(batch)

    def summary(self) -> dict[str, Any]:
        total = self.compute_seconds + self.wait_seconds
        return {
            "items_per_s": self.items / total if total else None,
            "timed_steps": max(self.steps - self.warmup, 0),
            "items": self.items,
            "data_wait_fraction": self.wait_seconds / total if total else None,
            "first_step_loss": self.first_loss,
        }


def _peak_memory_mb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None


def bench_train(
    task: Task,
    *,
    steps: int = 5,
    warmup: int = 1,
    repeats: int = 1,
    device: str = "cpu",
    variants: tuple[str, ...] = tuple(VARIANTS),
    config_name: str = "paper",
    overrides: list[str] | tuple[str, ...] = (),
    workers: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Training items per second of each precision variant, the waiting-on-data fraction, and the speed-up of
    every variant over the first (see the module docstring)."""
    from radlab.core.engine.driver import train
    from radlab.core.engine.trainer import extra_callbacks

    spec = task.bench.get() if task.bench is not None else None
    plan = spec.train if spec is not None else None
    if plan is None or task.demo is None:
        raise RadlabError(f"no `bench train` for {task.name}")
    variants = tuple(dict.fromkeys(variants))  # a variant named twice is measured once
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        raise RadlabConfigError(f"unknown variant {unknown[0] if unknown else ''!r}; choose from {', '.join(VARIANTS)}")
    device = bench_device(device)
    base = [
        "model.pretrained=false",
        "train.max_epochs=1",
        f"train.limit_train_batches={warmup + steps}",
        "train.limit_val_batches=1",
        "train.progress=quiet",
        "train.early_stopping_patience=null",
        f"train.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
        "train.devices=1",
        *plan.overrides,
        *(plan.cpu_overrides if device == "cpu" else ()),
        *([f"data.num_workers={workers}"] if workers is not None else []),
    ]
    config = task.load_config(config_name, [*base, *overrides])
    batch = int(config.train.batch_size)
    rates: dict[str, list[float]] = {v: [] for v in variants}
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="radlab-bench-train-") as scratch_name:
        scratch = Path(scratch_name)
        data = scratch / "data"
        task.demo.get().synth(data, seed, **plan.synth((warmup + steps) * batch))
        for repeat in range(repeats):
            order = variants if repeat % 2 == 0 else variants[::-1]
            for variant in order:
                info(f"bench train {task.name}: {variant}, repeat {repeat + 1}/{repeats}, {warmup}+{steps} steps")
                timer = StepTimer(warmup=warmup)
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                sets = [*base, *VARIANTS[variant], *overrides]
                with extra_callbacks(timer):
                    train(task, data, scratch / f"run-{variant}-{repeat}", config_name, sets, stage=plan.stage)
                summary = timer.summary()
                if summary["items_per_s"] is None:
                    raise RadlabError(f"bench train {task.name}: no step was timed (too few batches)")
                if summary["timed_steps"] < steps:
                    warn(f"bench train {task.name}: {summary['timed_steps']} of {steps} steps timed (too few batches)")
                rates[variant].append(summary["items_per_s"])
                results[variant] = {**summary, "peak_device_memory_mb": _peak_memory_mb(device)}
    return _train_report(task.name, config, device, plan, results, rates, batch, workers)


def _train_report(
    name: str,
    config: Any,
    device: str,
    plan: TrainPlan,
    results: dict[str, dict[str, Any]],
    rates: dict[str, list[float]],
    batch: int,
    workers: int | None,
) -> dict[str, Any]:
    reference, *others = rates
    for variant in results:
        median = statistics.median(rates[variant])
        results[variant]["items_per_s"] = median
        results[variant]["speedup"] = statistics.median(
            r / f for r, f in zip(rates[variant], rates[reference], strict=True)
        )
        results[variant]["full_epoch_hours"] = plan.epoch_items / median / 3600
    best = others[0] if others else reference
    report = machine(device)
    return {
        "task": name,
        "reference": reference,
        "radlab": best,
        "reference_items_per_s": results[reference]["items_per_s"],
        "radlab_items_per_s": results[best]["items_per_s"],
        "speedup": results[best]["speedup"],
        "max_abs_prob_diff": None,  # training: no probabilities compared; the first loss of each is reported
        "label_agreement": None,
        "variants": results,
        "item": plan.item,
        "epoch_items": plan.epoch_items,
        "batch_size": batch,
        "loader_workers": config.data.num_workers if workers is None else workers,
        "backbone": config.model.backbone,
        "image_size": getattr(config.data, "image_size", None),
        **report,
    }
