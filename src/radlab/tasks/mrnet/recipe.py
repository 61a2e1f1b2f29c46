"""Training one MRNet unit (one plane; one task or all three) as a LightningModule."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from radlab.core.console import warn
from radlab.core.engine.distributed import gather_by_index
from radlab.core.engine.optim import adam_with_plateau
from radlab.core.engine.run_dir import RunDir
from radlab.core.metrics import roc_auc
from radlab.core.models import save_weights
from radlab.tasks.mrnet.config import MRNetConfig
from radlab.tasks.mrnet.formats import TASKS
from radlab.tasks.mrnet.model import SeriesClassifier, Unit, build_unit_model


def positive_weights(labels: np.ndarray) -> np.ndarray:
    """BCE pos_weight per task = negatives / positives in the training labels (the baseline code's)."""
    positives = labels.sum(axis=0).astype(np.float64)
    negatives = len(labels) - positives
    return np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)


class MRNetUnitRecipe(L.LightningModule):
    """Class-weighted BCE on the unit's tasks; validation loss (the checkpoint criterion) and AUROC per task."""

    def __init__(self, config: MRNetConfig, unit: Unit, pos_weight: np.ndarray, model: SeriesClassifier | None = None):
        super().__init__()
        self.config = config
        self.unit = unit
        self.model = model if model is not None else build_unit_model(config, unit)
        self.columns = [TASKS.index(task) for task in unit.tasks]
        weights = pos_weight[self.columns] if config.train.class_weighting else np.ones(len(self.columns))
        self.register_buffer("pos_weight", torch.as_tensor(weights, dtype=torch.float32), persistent=False)
        self.latest_metrics: dict[str, Any] = {}
        self._logits: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self._index: list[torch.Tensor] = []
        self._reported: set[str] = set()

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        packed = batch["planes"][self.unit.plane]
        return self.model(packed["slices"], packed["lengths"])

    def _step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        for error in batch["errors"][self.unit.plane]:
            if error and error not in self._reported:
                self._reported.add(error)
                warn(f"{error} (left out)")
        readable = batch["planes"][self.unit.plane]["readable"].to(self.device, torch.float32)
        logits = self(batch).float()
        target = batch["labels"][:, self.columns]
        per_exam = F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight, reduction="none")
        loss = (per_exam.mean(dim=1) * readable).sum() / readable.sum().clamp(min=1.0)
        return loss, logits, target, readable.bool()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _, _, _ = self._step(batch)
        self.log("train/loss_step", loss, prog_bar=True, batch_size=len(batch["index"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, logits, target, readable = self._step(batch)
        self.log("val/loss", loss, on_epoch=True, batch_size=max(1, int(readable.sum())), sync_dist=True)
        self._logits.append(logits[readable].detach().cpu())
        self._labels.append(target[readable].detach().cpu())
        self._index.append(torch.as_tensor(batch["index"])[readable.cpu()])

    def on_validation_epoch_end(self) -> None:
        if not self._logits:
            return
        logits, labels, index = (torch.cat(b).numpy() for b in (self._logits, self._labels, self._index))
        for buffer in (self._logits, self._labels, self._index):
            buffer.clear()
        _, logits, labels = gather_by_index(self, index, logits, labels)  # DDP: the whole split
        aurocs = {task: roc_auc(labels[:, k], logits[:, k]) for k, task in enumerate(self.unit.tasks)}
        for task, value in aurocs.items():
            self.log(f"val/auroc_{task}", value, sync_dist=True)  # gathered: equal on every rank
        finite = [v for v in aurocs.values() if not np.isnan(v)]
        self.log("val/auroc", float(np.mean(finite)) if finite else float("nan"), sync_dist=True)
        self.latest_metrics = {task: (None if np.isnan(v) else float(v)) for task, v in aurocs.items()}

    def configure_optimizers(self) -> dict[str, Any]:
        optim = self.config.optim
        return adam_with_plateau(
            self.parameters(),
            lr=optim.lr,
            weight_decay=optim.weight_decay,
            factor=optim.plateau_factor,
            patience=optim.plateau_patience,
        )

    def export(self, run: RunDir, epoch: int) -> None:
        """Write this unit's weights and its validation AUROCs (the best validation loss so far)."""
        val_loss = self.trainer.callback_metrics.get("val/loss")
        save_weights(
            run.weights,
            self.model.state_dict(),
            {"task": "mrnet", "unit": self.unit.name, "tasks": ",".join(self.unit.tasks), "epoch": str(epoch)},
        )
        run.write_json(
            "metrics.json",
            {
                "unit": self.unit.name,
                "epoch": epoch,
                "val_loss": None if val_loss is None else float(val_loss),
                "auroc": self.latest_metrics,
            },
        )
