"""The two ICH training stages as LightningModules; both optimise the competition metric directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from radlab.core.console import warn
from radlab.core.engine.distributed import gather_by_index
from radlab.core.engine.run_dir import RunDir
from radlab.core.models import save_weights
from radlab.tasks.ich.config import IchConfig
from radlab.tasks.ich.evaluate import scores
from radlab.tasks.ich.formats import WEIGHTS
from radlab.tasks.ich.model import SequenceModel, build_slice_model


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean over kept rows of sum_j w_j BCE_j / sum_j w_j (w = 2 for "any", 1 otherwise): the metric."""
    weights = torch.as_tensor(WEIGHTS, dtype=logits.dtype, device=logits.device)
    per_row = (F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * weights).sum(-1) / weights.sum()
    keep = keep.to(per_row.dtype)
    return (per_row * keep).sum() / keep.sum().clamp(min=1.0)


class SliceRecipe(L.LightningModule):
    """The slice classifier: Adam at a fixed rate (no schedule, as the recipe), the best validation loss kept."""

    def __init__(self, config: IchConfig) -> None:
        super().__init__()
        self.config = config
        self.model = build_slice_model(config)
        self.latest: dict[str, Any] = {}
        self._probs: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._index: list[np.ndarray] = []
        self._reported: set[str] = set()

    def _step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        for error in batch["error"]:
            if error and error not in self._reported:
                self._reported.add(error)
                warn(f"{error} (left out)")
        keep = torch.tensor([not e for e in batch["error"]], device=self.device)
        logits = self.model(batch["image"]).float()
        return weighted_bce(logits, batch["labels"], keep), logits, keep

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _, keep = self._step(batch)
        self.log("train/loss_step", loss, prog_bar=True, batch_size=max(1, int(keep.sum())))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, logits, keep = self._step(batch)
        self.log("val/loss", loss, on_epoch=True, batch_size=max(1, int(keep.sum())), sync_dist=True)
        self._probs.append(torch.sigmoid(logits[keep]).cpu().numpy())
        self._labels.append(batch["labels"][keep].cpu().numpy())
        self._index.append(torch.as_tensor(batch["index"])[keep.cpu()].numpy())

    def on_validation_epoch_end(self) -> None:
        parts = [np.concatenate(b) if b else np.zeros((0, 6)) for b in (self._index, self._labels, self._probs)]
        for buffer in (self._index, self._labels, self._probs):
            buffer.clear()
        index, labels, probs = gather_by_index(self, parts[0].reshape(-1), parts[1], parts[2])  # DDP: whole split
        if len(index):
            self.latest = scores(labels, probs)
            self.log("val/weighted_log_loss", self.latest["weighted_log_loss"], sync_dist=True)  # equal on every rank

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.config.train.lr)

    def export(self, run: RunDir, epoch: int) -> None:
        save_weights(run.weights, self.model.state_dict(), {"task": "ich", "stage": "slice", "epoch": str(epoch)})
        run.write_json("metrics.json", {"epoch": epoch, **self.latest})


class SequenceRecipe(L.LightningModule):
    """The sequence BiLSTM over cached embeddings: Adam with StepLR; the weights of the last `keep_epochs`
    epochs are saved (snapshots/epoch_NN.safetensors) so that their predictions can be averaged."""

    def __init__(self, config: IchConfig, embedding_dim: int, run: RunDir) -> None:
        super().__init__()
        self.config = config
        self.run = run
        self.model = SequenceModel(embedding_dim)
        self.latest: dict[str, Any] = {}

    def _step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(batch["features"], batch["lengths"]).float()
        return weighted_bce(logits.reshape(-1, 6), batch["labels"].reshape(-1, 6), batch["mask"].reshape(-1)), logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _ = self._step(batch)
        self.log("train/loss_step", loss, prog_bar=True, batch_size=len(batch["index"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, _ = self._step(batch)
        self.log("val/loss", loss, on_epoch=True, batch_size=int(batch["mask"].sum()))

    def on_train_epoch_end(self) -> None:
        first_kept = self.config.sequence.max_epochs - self.config.sequence.keep_epochs
        if self.current_epoch >= first_kept and self.trainer.is_global_zero:
            save_weights(
                snapshot_path(self.run.root, self.current_epoch + 1),
                self.model.state_dict(),
                {"task": "ich", "stage": "sequence", "epoch": str(self.current_epoch + 1)},
            )

    def configure_optimizers(self) -> dict[str, Any]:
        sequence = self.config.sequence
        optimizer = torch.optim.Adam(self.parameters(), lr=sequence.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=sequence.step_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def export(self, run: RunDir, epoch: int) -> None:
        save_weights(run.weights, self.model.state_dict(), {"task": "ich", "stage": "sequence", "epoch": str(epoch)})
        loss = self.trainer.callback_metrics.get("val/loss")
        run.write_json("metrics.json", {"epoch": epoch, "val_loss": None if loss is None else float(loss)})


def snapshot_path(sequence_dir: Path, epoch: int) -> Path:
    return sequence_dir / "snapshots" / f"epoch_{epoch:02d}.safetensors"


def snapshots(sequence_dir: Path) -> list[Path]:
    return sorted((sequence_dir / "snapshots").glob("epoch_*.safetensors"))
