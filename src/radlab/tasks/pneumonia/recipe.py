"""The RSNA Pneumonia training recipe as a LightningModule.

Loss = focal classification + box regression + 0.1 x global-class NLL. Validation computes the losses (the
plateau schedule follows the box loss, as in the recipe) and the detections in one pass; at the end of each
epoch a sweep over score thresholds gives the validation mAP, and the epoch x threshold table is kept in
RUN/threshold_sweep.csv.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from radlab.core.console import warn
from radlab.core.engine.callbacks import read_history, write_history
from radlab.core.engine.distributed import gather_dict
from radlab.core.engine.optim import adam_with_plateau
from radlab.core.engine.run_dir import RunDir
from radlab.core.models import save_weights
from radlab.tasks.pneumonia.config import PneumoniaConfig
from radlab.tasks.pneumonia.model import PneumoniaDetector, opacity_weight
from radlab.tasks.pneumonia.postprocess import best_threshold, select, threshold_sweep, to_original

SWEEP_FILE = "threshold_sweep.csv"
DETECTIONS_FILE = "valid_detections.json"


class PneumoniaRecipe(L.LightningModule):
    def __init__(
        self, config: PneumoniaConfig, run: RunDir, truth: list[np.ndarray], paths: list[str] | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.run = run
        self.truth = truth
        self.paths = paths
        self.latest_found: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
        self.model = PneumoniaDetector(config)
        self.latest: dict[str, Any] = {}
        self._found: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
        self._reported: set[str] = set()

    def _readable(self, batch: dict[str, Any]) -> list[int]:
        for error in batch["error"]:
            if error and error not in self._reported:
                self._reported.add(error)
                warn(f"{error} (left out)")
        return [i for i, error in enumerate(batch["error"]) if not error]

    def _losses(self, out: dict[str, Any], categories: torch.Tensor) -> dict[str, torch.Tensor]:
        losses = dict(out["losses"])
        losses["global"] = F.nll_loss(out["global"], categories)
        losses["total"] = (
            losses["classification"]
            + losses["bbox_regression"]
            + self.config.model.global_loss_weight * losses["global"]
        )
        return losses

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
        weights = opacity_weight(out["global"]).cpu().numpy()
        for k, i in enumerate(keep):
            found = out["detections"][k]
            boxes = to_original(found["boxes"].cpu().numpy(), self.config.data.image_size, batch["size"][i])
            self._found[int(batch["index"][i])] = (boxes, found["scores"].cpu().numpy(), float(weights[k]))

    def on_validation_epoch_end(self) -> None:
        found = gather_dict(self, self._found)  # DDP: every rank's images
        self._found.clear()
        if not found:
            return
        self._found = found
        order = sorted(self._found)
        post = self.config.postprocess
        table = threshold_sweep(
            [self.truth[i] for i in order],
            [self._found[i][0] for i in order],
            [self._found[i][1] for i in order],
            post.thresholds,
            post.relative_prune,
            post.iou_comparison,
            [self._found[i][2] for i in order] if post.use_global else None,
        )
        self.latest_found = dict(self._found)
        self._found.clear()
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

    def configure_optimizers(self) -> dict[str, Any]:
        optim = self.config.optim
        return adam_with_plateau(
            self.parameters(),
            lr=optim.lr,
            weight_decay=optim.weight_decay,
            factor=optim.plateau_factor,
            patience=optim.plateau_patience,
            monitor="val/box_loss",
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
        post = self.config.postprocess
        found = []
        for index, (boxes, scores, weight) in sorted(self.latest_found.items()):
            weighed = weight if post.use_global else None
            kept, kept_scores = select(boxes, scores, threshold, post.relative_prune, weighed)
            found.append(
                {
                    "input": self.paths[index],
                    "truth": np.round(np.asarray(self.truth[index]).reshape(-1, 4), 1).tolist(),
                    "boxes": np.round(kept, 1).tolist(),
                    "scores": np.round(kept_scores, 4).tolist(),
                }
            )
        return found
