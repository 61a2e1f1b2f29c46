"""The MURA training recipe as a LightningModule: per-type weighted BCE per image, study-level validation."""

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
from radlab.core.models import ImageClassifier, save_weights
from radlab.core.report.cases import CASES_FILE, write_case_table
from radlab.tasks.mura.config import MuraConfig
from radlab.tasks.mura.data import MuraSplit
from radlab.tasks.mura.evaluate import detailed_metrics
from radlab.tasks.mura.formats import study_type
from radlab.tasks.mura.model import build_model
from radlab.tasks.mura.pooling import StudyPooler


class MuraRecipe(L.LightningModule):
    """Trains on images, validates on studies (mean of image probabilities, label = p > threshold).

    `loss_weights` holds [w_negative, w_positive] per study type (see data.class_weights); images that
    failed to decode are masked out of the loss with a warning naming the file.
    """

    def __init__(
        self,
        config: MuraConfig,
        loss_weights: np.ndarray,
        validation: MuraSplit,
        model: ImageClassifier | None = None,
        validation_paths: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.model = model if model is not None else build_model(config)
        self.register_buffer("loss_weights", torch.as_tensor(loss_weights, dtype=torch.float32), persistent=False)
        self.validation = validation
        self.validation_paths = validation_paths
        self.latest_metrics: dict[str, Any] = {}
        self.latest_cases: tuple[list[str], np.ndarray, np.ndarray] | None = None
        self._val_probs: list[torch.Tensor] = []
        self._val_index: list[torch.Tensor] = []
        self._val_readable: list[torch.Tensor] = []
        self._reported: set[str] = set()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).squeeze(1)

    def _step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        for error in batch["error"]:
            if error and error not in self._reported:
                self._reported.add(error)
                warn(f"{error} (left out)")
        readable = torch.tensor([not e for e in batch["error"]], device=self.device, dtype=torch.float32)
        logits = self(batch["image"]).float()
        target = batch["label"].float()
        weight = self.loss_weights[batch["type"], target.long()] * readable
        per_image = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        loss = (per_image * weight).sum() / readable.sum().clamp(min=1.0)
        return loss, logits, readable

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._step(batch)
        self.log("train/loss_step", loss, prog_bar=True, batch_size=len(batch["error"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, logits, readable = self._step(batch)
        self.log("val/loss", loss, on_epoch=True, batch_size=max(1, int(readable.sum())), sync_dist=True)
        self._val_probs.append(torch.sigmoid(logits).detach().cpu())
        self._val_index.append(batch["index"].cpu())
        self._val_readable.append(readable.bool().cpu())

    def on_validation_epoch_end(self) -> None:
        if not self._val_probs:
            return
        probs, index, readable = (torch.cat(b).numpy() for b in (self._val_probs, self._val_index, self._val_readable))
        for buffer in (self._val_probs, self._val_index, self._val_readable):
            buffer.clear()
        index, probs, readable = gather_by_index(self, index, probs, readable)  # DDP: the whole split
        readable = readable.astype(bool)

        pooler = StudyPooler(len(self.validation.studies), self.config.predict.pooling)
        pooler.add(self.validation.image_study[index], probs, readable)
        seen = pooler.has_image
        studies = [s for s, keep in zip(self.validation.studies, seen, strict=True) if keep]
        study_probs = pooler.probabilities()[seen]
        truth = self.validation.study_labels[seen]
        predicted = (study_probs > self.config.predict.threshold).astype(np.int64)
        details = detailed_metrics(studies, truth, predicted, study_probs)
        overall = details["Overall"]
        for name in ("kappa", "auroc", "sensitivity", "specificity"):
            value = overall.get(name)
            self.log(f"val/{name}", float("nan") if value is None else value, sync_dist=True)  # equal on every rank
        self.latest_metrics = details
        self.latest_cases = (studies, truth, study_probs)

    def configure_optimizers(self) -> dict[str, Any]:
        optim = self.config.optim
        return adam_with_plateau(
            self.parameters(),
            lr=optim.lr,
            betas=optim.betas,
            weight_decay=optim.weight_decay,
            factor=optim.plateau_factor,
            patience=optim.plateau_patience,
        )

    def export(self, run: RunDir, epoch: int) -> None:
        """Write model.safetensors and metrics.json for this (best so far) epoch."""
        val_loss = self.trainer.callback_metrics.get("val/loss")
        metrics = {
            "epoch": epoch,
            "monitor": f"val/{self.config.train.monitor}",
            "val_loss": None if val_loss is None else float(val_loss),
            "threshold": self.config.predict.threshold,
            "pooling": self.config.predict.pooling,
            "study_level": self.latest_metrics,
        }
        save_weights(
            run.weights,
            self.model.state_dict(),
            {"task": "mura", "backbone": self.config.model.backbone, "epoch": str(epoch)},
        )
        run.write_json("metrics.json", metrics)
        if self.latest_cases is not None:
            self._write_cases(run)

    def _write_cases(self, run: RunDir) -> None:
        """valid_predictions.csv: one row per validation study, its first image as the input to show."""
        studies, truth, probs = self.latest_cases
        first_image: dict[str, str] = {}
        for k, s in enumerate(self.validation.image_study):
            path = self.validation_paths[k] if self.validation_paths else self.validation.images[k].path
            first_image.setdefault(self.validation.studies[s], str(path))
        write_case_table(
            run.file(CASES_FILE),
            studies,
            ["abnormal"],
            truth,
            probs,
            groups=[study_type(s) or "unknown" for s in studies],
            inputs=[first_image[s] for s in studies],
        )
