"""The LightningModule every task's recipe derives from: its config, the metric its best epoch is kept on,
one DDP-aware validation buffer, and one warning per unreadable training or validation item.

The buffer follows MONAI's cumulative metrics: `add` per batch, `gather` once per epoch (every rank's
items, the distributed sampler's padded repeats dropped, in item order), which also resets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig

from radlab.core.console import warn
from radlab.core.engine.config import PlateauOptimConfig
from radlab.core.engine.optim import adam_with_plateau
from radlab.core.engine.run_dir import RunDir

C = TypeVar("C")


def gather_objects(module: L.LightningModule, value: Any) -> list[Any]:
    """[value of rank 0, value of rank 1, ...]; [value] in a single process. Values are picklable Python
    (NumPy arrays, dicts): results this run computed, never a file from outside."""
    trainer = module._trainer
    if trainer is None or trainer.world_size <= 1 or not torch.distributed.is_initialized():
        return [value]
    gathered: list[Any] = [None] * trainer.world_size
    torch.distributed.all_gather_object(gathered, value)
    return gathered


def _as_array(values: Any) -> np.ndarray:
    """Values as a NumPy array: tensors on the CPU (half and bfloat16 ones, from mixed-precision steps, as
    float32, which NumPy has), arrays as they are, anything else as an object array of its items."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        return (values.float() if values.dtype in (torch.float16, torch.bfloat16) else values).numpy()
    if isinstance(values, np.ndarray):
        return values
    items = list(values)
    array = np.empty(len(items), dtype=object)  # ragged items (boxes per image) stay whole
    array[:] = items
    return array


@dataclass(frozen=True)
class Gathered:
    """One epoch's validation results over every rank: item indices (sorted, unique) and the columns."""

    index: np.ndarray
    columns: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __len__(self) -> int:
        return len(self.index)


class ValidationBuffer:
    """Per-item validation results of one epoch: `add(index, name=values, ...)` per batch (tensors, arrays,
    or lists of ragged items), then `gather(module)` once."""

    def __init__(self) -> None:
        self._index: list[np.ndarray] = []
        self._columns: dict[str, list[np.ndarray]] = {}

    def add(self, index: Any, **columns: Any) -> None:
        self._index.append(np.asarray(_as_array(index), dtype=np.int64).reshape(-1))
        for name, values in columns.items():
            self._columns.setdefault(name, []).append(_as_array(values))

    def reset(self) -> None:
        self._index.clear()
        self._columns.clear()

    def gather(self, module: L.LightningModule) -> Gathered:
        """Every rank's items, each once, sorted by index; the buffer is emptied."""
        mine = (
            np.concatenate(self._index) if self._index else np.zeros(0, dtype=np.int64),
            {name: np.concatenate(parts) for name, parts in self._columns.items()},
        )
        self.reset()
        parts = gather_objects(module, mine)
        index = np.concatenate([part[0] for part in parts])
        index, first = np.unique(index, return_index=True)
        names = dict.fromkeys(name for part in parts for name in part[1])
        columns = {name: np.concatenate([part[1][name] for part in parts if name in part[1]])[first] for name in names}
        return Gathered(index, columns)


class Recipe(L.LightningModule, Generic[C]):
    """A task's training recipe. Subclasses set `monitor` / `mode` (what the kept epoch is chosen on) and
    implement `export(run, epoch)`, which writes the deployable weights and metrics of a new best epoch.
    The default optimiser is Adam with the rate cut on a plateau of `plateau_monitor`, from `config.optim`
    (a PlateauOptimConfig); a recipe with another schedule overrides `configure_optimizers`."""

    monitor: str = "val/loss"
    mode: Literal["min", "max"] = "min"
    plateau_monitor: str = "val/loss"
    member_files: tuple[str, ...] = ()
    """Files of the run directory (beyond config.yaml and data.json) that a kept epoch's own run directory
    needs to load and be checked (see snapshots.py)."""

    def __init__(self, config: C) -> None:
        super().__init__()
        self.config = config
        self.validation = ValidationBuffer()
        self._reported: set[str] = set()

    def readable(self, errors: Sequence[str]) -> list[bool]:
        """Which items of a batch decoded; each unreadable file is warned about once, by name."""
        for error in errors:
            if error and error not in self._reported:
                self._reported.add(error)
                warn(f"{error} (left out)")
        return [not error for error in errors]

    def readable_mask(self, errors: Sequence[str]) -> torch.Tensor:
        """`readable` as a float tensor on the module's device (1 readable, 0 not), to weigh a loss."""
        return torch.tensor(self.readable(errors), device=self.device, dtype=torch.float32)

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        optim = getattr(self.config, "optim", None)
        if not isinstance(optim, PlateauOptimConfig):
            raise NotImplementedError(f"{type(self).__name__} has no config.optim plateau settings; override this")
        return adam_with_plateau(self.parameters(), optim, self.plateau_monitor)

    def export(self, run: RunDir, epoch: int) -> None:
        raise NotImplementedError(f"{type(self).__name__} must write its best epoch's weights and metrics")
