"""The MURA training recipe: per-type weighted BCE per image, study-level validation, and `fit`, what
`radlab mura train` runs inside the core training driver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from radlab.core.engine.driver import FitContext, Training, fit_recipe
from radlab.core.engine.loaders import epoch_loader
from radlab.core.engine.recipe import Recipe
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabConfigError
from radlab.core.models import ImageClassifier, save_weights
from radlab.core.report.cases import CASES_FILE, write_case_table
from radlab.core.transforms import build_image_transform
from radlab.tasks.mura import MuraConfig
from radlab.tasks.mura.data import MuraDataset, MuraSplit, StudyPooler, class_weights, fold_split, split_statistics
from radlab.tasks.mura.evaluate import detailed_metrics, results_table
from radlab.tasks.mura.formats import resolve_data_root, study_type
from radlab.tasks.mura.model import build_model


class MuraRecipe(Recipe[MuraConfig]):
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
        super().__init__(config)
        self.monitor = f"val/{config.train.monitor}"
        self.mode = "min" if config.train.monitor == "loss" else "max"
        self.model = model if model is not None else build_model(config)
        self.loss_weights: torch.Tensor
        self.register_buffer("loss_weights", torch.as_tensor(loss_weights, dtype=torch.float32), persistent=False)
        self.split = validation
        self.validation_paths = validation_paths
        self.latest_metrics: dict[str, Any] = {}
        self.latest_cases: tuple[list[str], np.ndarray, np.ndarray] | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).squeeze(1)

    def _step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        readable = self.readable_mask(batch["error"])
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
        self.validation.add(batch["index"], probs=torch.sigmoid(logits), readable=readable.bool())

    def on_validation_epoch_end(self) -> None:
        found = self.validation.gather(self)  # DDP: the whole split
        if not len(found):
            return
        pooler = StudyPooler(len(self.split.studies), self.config.predict.pooling)
        pooler.add(self.split.image_study[found.index], found["probs"], found["readable"].astype(bool))
        seen = pooler.has_image
        studies = [s for s, keep in zip(self.split.studies, seen, strict=True) if keep]
        study_probs = pooler.probabilities()[seen]
        truth = self.split.study_labels[seen]
        predicted = (study_probs > self.config.predict.threshold).astype(np.int64)
        details = detailed_metrics(studies, truth, predicted, study_probs)
        overall = details["Overall"]
        for name in ("kappa", "auroc", "sensitivity", "specificity"):
            value = overall.get(name)
            self.log(f"val/{name}", float("nan") if value is None else value, sync_dist=True)  # equal on every rank
        self.latest_metrics = details
        self.latest_cases = (studies, truth, study_probs)

    def export(self, run: RunDir, epoch: int) -> None:
        """Write model.safetensors and metrics.json for this (best so far) epoch."""
        val_loss = self.trainer.callback_metrics.get("val/loss")
        metrics = {
            "epoch": epoch,
            "monitor": self.monitor,
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
            self._write_cases(run, *self.latest_cases)

    def _write_cases(self, run: RunDir, studies: list[str], truth: np.ndarray, probs: np.ndarray) -> None:
        """valid_predictions.csv: one row per validation study, its first image as the input to show."""
        first_image: dict[str, str] = {}
        for k, s in enumerate(self.split.image_study):
            path = self.validation_paths[k] if self.validation_paths else self.split.images[k].path
            first_image.setdefault(self.split.studies[s], str(path))
        write_case_table(
            run.file(CASES_FILE),
            studies,
            ["abnormal"],
            truth,
            probs,
            groups=[study_type(s) or "unknown" for s in studies],
            inputs=[first_image[s] for s in studies],
        )


def fit(context: FitContext[MuraConfig]) -> dict[str, Any]:
    """Train on the train split (or k-1 folds of it) and validate on the valid split (or the held-out fold);
    returns the kept epoch's metrics."""
    config, root = context.config, context.data_root
    data, aug, engine = config.data, config.augment, config.train
    train_studies, valid_split, valid_studies = None, "valid", None
    if engine.folds is not None:
        if engine.fold >= engine.folds:
            raise RadlabConfigError(f"train.fold must be below train.folds ({engine.folds})")
        train_studies, valid_studies = fold_split(root, engine.folds, engine.fold, engine.seed)
        valid_split = "train"
    augment = build_image_transform(
        data.image_size, train=True, hflip=aug.hflip, rotate_deg=aug.rotate_deg, resize=data.resize, seed=engine.seed
    )
    train_set = MuraDataset(
        root, "train", augment, cache_dir=data.cache_dir, resize=data.resize, augment=True, studies=train_studies
    )
    plain = build_image_transform(data.image_size, resize=data.resize)
    valid_set = MuraDataset(
        root, valid_split, plain, cache_dir=data.cache_dir, resize=data.resize, studies=valid_studies
    )
    weights = class_weights(train_set.split, engine.loss_weighting)
    if context.primary:
        context.run.write_json("data_stats.json", split_statistics(train_set.split, weights))
    recipe = MuraRecipe(config, weights, valid_set.split, validation_paths=valid_set.paths)
    batch, workers = engine.batch_size, data.num_workers
    trainer = fit_recipe(
        recipe,
        context.run,
        engine,
        epoch_loader(train_set, batch_size=batch, num_workers=workers, shuffle=True),
        epoch_loader(valid_set, batch_size=batch, num_workers=workers, shuffle=False),
        context.checkpoint,
    )
    metrics = context.run.read_json("metrics.json")
    metrics["stopped_epoch"] = trainer.current_epoch
    return metrics


def held_out_scores(metrics: dict[str, Any]) -> dict[str, float | None]:
    """What an ensemble manifest records of one run: its held-out kappa and AUROC, and the validation loss
    of its kept epoch (the paper ensembles the members with the lowest)."""
    overall = metrics.get("study_level", {}).get("Overall", {})
    return {"kappa": overall.get("kappa"), "auroc": overall.get("auroc"), "loss": metrics.get("val_loss")}


def describe(metrics: dict[str, Any], out: Path) -> Any:
    """The study-level table and the kept epoch, printed when training ends."""
    from rich.console import Group

    kept = f"kept epoch {metrics['epoch']} ({metrics['monitor']}); model in {out / 'model.safetensors'}"
    return Group(results_table(metrics["study_level"]), kept)


TRAINING = Training(data_root=resolve_data_root, fit=fit, held_out=held_out_scores, describe=describe)
