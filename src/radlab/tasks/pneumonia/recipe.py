"""The RSNA Pneumonia training recipe, and `fit`, what `radlab pneumonia train` runs inside the core driver:
one fold of the stratified k-fold split trained and validated.

Loss = focal classification + box regression + 0.1 x global-class NLL. Validation computes the losses (the
plateau schedule follows the box loss, as in the recipe) and the detections in one pass; at the end of each
epoch a sweep over score thresholds gives the validation mAP, and the epoch x threshold table is kept in
RUN/threshold_sweep.csv.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from radlab.core.engine.callbacks import read_history, write_history
from radlab.core.engine.driver import FitContext, Training, fit_recipe
from radlab.core.engine.loaders import epoch_loader
from radlab.core.engine.recipe import Recipe
from radlab.core.engine.run_dir import RunDir
from radlab.core.models import save_weights
from radlab.tasks.pneumonia import PneumoniaConfig
from radlab.tasks.pneumonia.data import DetectionTransform, PneumoniaDataset, collate_detection, fold_ids
from radlab.tasks.pneumonia.formats import DETECTIONS_FILE, SWEEP_FILE, resolve_data_root
from radlab.tasks.pneumonia.model import (
    PneumoniaDetector,
    best_threshold,
    opacity_weight,
    select,
    threshold_sweep,
    to_original,
)


@dataclass(frozen=True)
class Found:
    """One validation image's raw detections: boxes (x, y, w, h) in original pixels, their scores, and the
    global head's opacity weight (one object per image: the boxes are ragged)."""

    boxes: np.ndarray
    scores: np.ndarray
    weight: float


class PneumoniaRecipe(Recipe[PneumoniaConfig]):
    """The kept epoch has the best validation mAP; the learning rate follows the validation box loss."""

    monitor = "val/map"
    mode = "max"
    plateau_monitor = "val/box_loss"
    member_files = ("split.json",)

    def __init__(
        self, config: PneumoniaConfig, run: RunDir, truth: list[np.ndarray], paths: list[str] | None = None
    ) -> None:
        super().__init__(config)
        self.run = run
        self.truth = truth
        self.paths = paths
        self.model = PneumoniaDetector(config)
        self.latest: dict[str, Any] = {}
        self.latest_found: dict[int, Found] = {}

    def _losses(self, out: dict[str, Any], categories: torch.Tensor) -> dict[str, torch.Tensor]:
        losses = dict(out["losses"])
        losses["global"] = F.nll_loss(out["global"], categories)
        losses["total"] = (
            losses["classification"]
            + losses["bbox_regression"]
            + self.config.model.global_loss_weight * losses["global"]
        )
        return losses

    def _readable(self, batch: dict[str, Any]) -> list[int]:
        return [i for i, readable in enumerate(self.readable(batch["error"])) if readable]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        keep = self._readable(batch)
        if not keep:
            return None
        images = batch["image"][keep]
        targets = [batch["targets"][i] for i in keep]
        losses = self._losses(self.model(images, targets), batch["category"][keep])
        self.log("train/loss_step", losses["total"], prog_bar=True, batch_size=len(keep))
        return losses["total"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        keep = self._readable(batch)
        if not keep:
            return
        images = batch["image"][keep]
        targets = [batch["targets"][i] for i in keep]
        out = self.model(images, targets, detect=True)
        losses = self._losses(out, batch["category"][keep])
        for name, key in (("loss", "total"), ("box_loss", "bbox_regression"), ("class_loss", "classification")):
            self.log(f"val/{name}", losses[key], on_epoch=True, batch_size=len(keep), sync_dist=True)
        weights = opacity_weight(out["global"]).float().cpu().numpy()  # float: bf16 under mixed precision
        found = []
        for k, i in enumerate(keep):
            detections = out["detections"][k]
            boxes = detections["boxes"].float().cpu().numpy()
            scores = detections["scores"].float().cpu().numpy()
            found.append(
                Found(to_original(boxes, self.config.data.image_size, batch["size"][i]), scores, float(weights[k]))
            )
        self.validation.add(batch["index"][keep], found=found)

    def on_validation_epoch_end(self) -> None:
        gathered = self.validation.gather(self)  # DDP: every rank's images, each once, in index order
        if not len(gathered):
            return
        found: list[Found] = list(gathered["found"])
        post = self.config.postprocess
        table = threshold_sweep(
            [self.truth[i] for i in gathered.index],
            [f.boxes for f in found],
            [f.scores for f in found],
            post.thresholds,
            post.relative_prune,
            post.iou_comparison,
            [f.weight for f in found] if post.use_global else None,
        )
        self.latest_found = dict(zip(gathered.index.tolist(), found, strict=True))
        threshold, value = best_threshold(table)
        self.log("val/map", value, sync_dist=True)  # gathered: equal on every rank
        self.log("val/score_threshold", threshold, sync_dist=True)
        self.latest = {"map": None if np.isnan(value) else value, "score_threshold": threshold, "sweep": table}
        if not self.trainer.sanity_checking and self.trainer.is_global_zero:
            epoch = self.current_epoch + 1
            rows = [r for r in read_history(self.run.file(SWEEP_FILE)) if int(r["epoch"]) < epoch]
            write_history(
                self.run.file(SWEEP_FILE), [*rows, {"epoch": epoch, **{f"{t:g}": v for t, v in table.items()}}]
            )

    def export(self, run: RunDir, epoch: int) -> None:
        """Weights, validation metrics and the post-processing (with the chosen threshold) of this epoch."""
        post = self.config.postprocess
        save_weights(run.weights, self.model.state_dict(), {"task": "pneumonia", "epoch": str(epoch)})
        run.write_json(
            "postprocess.json",
            {
                "score_threshold": self.latest.get("score_threshold"),
                "relative_prune": post.relative_prune,
                "nms_iou": post.nms_iou,
                "use_global": post.use_global,
            },
        )
        run.write_json("metrics.json", {"epoch": epoch, **self.latest})
        if self.paths is not None and self.latest.get("score_threshold") is not None:
            run.write_json(DETECTIONS_FILE, self._validation_detections(float(self.latest["score_threshold"])))

    def _validation_detections(self, threshold: float) -> list[dict[str, Any]]:
        """Per validation image: its file, true boxes and the boxes kept at the chosen threshold (x, y, w, h)."""
        assert self.paths is not None  # checked by export
        post = self.config.postprocess
        detections = []
        for index, found in sorted(self.latest_found.items()):
            weighed = found.weight if post.use_global else None
            kept, kept_scores = select(found.boxes, found.scores, threshold, post.relative_prune, weighed)
            detections.append(
                {
                    "input": self.paths[index],
                    "truth": np.round(np.asarray(self.truth[index]).reshape(-1, 4), 1).tolist(),
                    "boxes": np.round(kept, 1).tolist(),
                    "scores": np.round(kept_scores, 4).tolist(),
                }
            )
        return detections


def fit(context: FitContext[PneumoniaConfig]) -> dict[str, Any]:
    """Train on the k-1 training folds, validate (and sweep the score threshold) on the held-out one; returns
    the kept epoch's validation metrics."""
    config, root, run = context.config, context.data_root, context.run
    train_ids, valid_ids = fold_ids(root, config)
    size, cache = config.data.image_size, config.data.cache_dir
    train_set = PneumoniaDataset(
        root, "train", DetectionTransform(size, True, config.augment, config.train.seed), train_ids, cache
    )
    valid_set = PneumoniaDataset(root, "train", DetectionTransform(size), valid_ids, cache)
    if context.primary:
        run.write_json("split.json", {"fold": config.train.fold, "folds": config.train.folds, "valid": valid_ids})
    recipe = PneumoniaRecipe(config, run, valid_set.truth, [str(p) for p in valid_set.paths])
    loader = partial(
        epoch_loader,
        batch_size=config.train.batch_size,
        num_workers=config.data.num_workers,
        collate_fn=collate_detection,
    )
    fit_recipe(
        recipe,
        run,
        config.train,
        loader(train_set, shuffle=True),
        loader(valid_set, shuffle=False),
        context.checkpoint,
    )
    return run.read_json("metrics.json")


def held_out_scores(metrics: dict[str, Any]) -> dict[str, float | None]:
    """What an ensemble manifest and tuning read of one fold: its held-out mAP."""
    return {"mAP": metrics.get("map")}


def describe(metrics: dict[str, Any], out: Path) -> str:
    """The kept epoch and its operating point, printed when training ends."""
    return (
        f"kept epoch {metrics['epoch']}: validation mAP {metrics.get('map')} at score threshold "
        f"{metrics.get('score_threshold')}; sweep in {out / SWEEP_FILE}"
    )


TRAINING = Training(data_root=resolve_data_root, fit=fit, held_out=held_out_scores, describe=describe)
