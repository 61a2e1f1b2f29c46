"""What one training epoch of each `paper` recipe costs on this machine, measured at a reduced size.

For each task: a small synthetic data set, the `paper` preset with random weights (no network), a few
training steps of the preset's network at the preset's image size; the first step is a warm-up and is not
timed. Prints one JSON line per task: the measured training items/s (forward, backward, optimiser step;
data loading in-process) and what a full epoch of the real training set would take at that rate. The batch
is reduced where the preset's would not fit a CPU's memory; the line says so.

    python benchmarks/paper_epoch.py [--steps 3] [--tasks mura,mrnet,pneumonia,ich]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from radlab.core.engine.driver import train
from radlab.core.engine.trainer import extra_callbacks
from radlab.core.task import get_task

# Per task: synth sizes, the overrides that shrink the run (not the network), the real training-set size
# and what one item is, and the batch used here when the preset's does not fit.
PLANS: dict[str, dict[str, Any]] = {
    "mura": {
        "synth": {"studies": 24},
        "sets": ["train.members=null", "data.num_workers=0"],
        "train_items": 36808,
        "item": "radiograph",
    },
    "mrnet": {
        "synth": {"exams": 8},
        "sets": ["train.planes=[sagittal]", "train.tasks=[acl]", "data.num_workers=0"],
        "train_items": 1130,
        "item": "exam (one of the 9 networks; the recipe trains 9)",
    },
    "pneumonia": {
        "synth": {"patients": 16},
        "sets": ["data.num_workers=0", "train.batch_size=2"],
        "train_items": 26684 * 3 // 4,
        "item": "image (one fold: 3/4 of stage-2 train)",
    },
    "ich": {
        "synth": {"series": 10},
        "sets": ["data.num_workers=0", "train.batch_size=4", "train.snapshot_epochs=null", "train.snapshots=null"],
        "train_items": 752803 * 4 // 5,
        "item": "slice (the slice CNN, one fold: 4/5 of stage-2 train)",
        "stage": "slice",
    },
}


class StepTimer(L.Callback):
    """Seconds and items of every training step but the first."""

    def __init__(self) -> None:
        self.seconds, self.items, self.steps = 0.0, 0, 0
        self._started = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self.steps += 1
        if self.steps > 1:
            self.seconds += time.perf_counter() - self._started
            self.items += _batch_items(batch)


def _batch_items(batch: Any) -> int:
    if isinstance(batch, dict):
        for key in ("image", "images", "slices"):
            if isinstance(batch.get(key), torch.Tensor):
                return int(batch[key].shape[0])
        for key in ("error", "index", "label", "labels"):
            if key in batch:
                return len(batch[key])
    return 1


def measure(name: str, steps: int, scratch: Path) -> dict[str, Any]:
    plan = PLANS[name]
    task = get_task(name)
    data = scratch / name / "data"
    task.demo.get().synth(data, 0, **plan["synth"])
    preset = task.load_config("paper")
    sets = [
        "model.pretrained=false",
        "train.max_epochs=1",
        f"train.limit_train_batches={steps + 1}",
        "train.limit_val_batches=1",
        "train.progress=quiet",
        "train.early_stopping_patience=null",
        *plan["sets"],
    ]
    timer = StepTimer()
    with extra_callbacks(timer):
        train(task, data, scratch / name / "run", "paper", sets, stage=plan.get("stage"))
    rate = timer.items / timer.seconds if timer.seconds else float("nan")
    batch = task.load_config("paper", [s for s in sets if s.startswith("train.batch_size")]).train.batch_size
    return {
        "task": name,
        "backbone": preset.model.backbone,
        "image_size": getattr(preset.data, "image_size", None),
        "preset_batch": preset.train.batch_size,
        "measured_batch": batch,
        "timed_steps": timer.steps - 1,
        "items_per_s": round(rate, 3),
        "item": plan["item"],
        "full_epoch_hours": round(plan["train_items"] / rate / 3600, 1) if rate == rate else None,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per task (after one warm-up)")
    parser.add_argument("--tasks", default=",".join(PLANS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="radlab-paper-epoch-") as scratch:
        for name in args.tasks.split(","):
            print(json.dumps(measure(name, args.steps, Path(scratch))), flush=True)


if __name__ == "__main__":
    main()
