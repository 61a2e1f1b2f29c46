"""Training MRNet: one unit network (one plane; one task or all three) as a recipe, and `fit`, what
`radlab mrnet train` runs inside the core training driver: every unit, then the logistic fusion.

Each unit is its own Lightning run under RUN/units/<unit>/ (checkpoints, history, best weights); a finished
unit is skipped on --resume. The fusion is fitted on training-set logits (or out-of-fold logits from k
extra trainings per unit, RUN/units/<unit>/fold<k>/) and stored as RUN/fusion.json; RUN/metrics.json holds
the valid-split AUROCs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from radlab.core.console import info
from radlab.core.engine.callbacks import read_history, write_history
from radlab.core.engine.driver import FitContext, Training, fit_recipe, fit_stage
from radlab.core.engine.folds import stratified_folds
from radlab.core.engine.loaders import epoch_loader
from radlab.core.engine.recipe import Recipe
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabConfigError
from radlab.core.metrics import roc_auc
from radlab.core.models import save_weights
from radlab.core.report.cases import CASES_FILE, write_case_table
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet import ClassWeighting, MRNetConfig
from radlab.tasks.mrnet.data import MRNetDataset, collate_exams
from radlab.tasks.mrnet.formats import TASKS, official_scores, read_split_labels, resolve_data_root, volume_path
from radlab.tasks.mrnet.model import (
    Logits,
    SeriesClassifier,
    Unit,
    apply_fusion,
    build_unit_model,
    fit_fusion,
    load_units,
    unit_run,
    units_for,
)
from radlab.tasks.mrnet.predict import unit_logits

if TYPE_CHECKING:
    import lightning as L

Validation = tuple[str, list[str] | None]
"""(split, exam ids) validated on: ("valid", None) is the official valid split, whole."""


def class_weights(labels: np.ndarray, scheme: ClassWeighting) -> np.ndarray:
    """(2, tasks) BCE weights of a label 0 (row 0) and a label 1 (row 1) per task, from `labels` (n, tasks).

    "baseline" is the Stanford baseline's [p, 1 - p] with p the share of positives (loader.py), "pos_weight"
    Misa Ogura's [1, negatives / positives], "none" ones. A task whose labels hold one class only is weighted
    1 and 1 (the baseline's weights would make its loss vanish)."""
    labels = np.asarray(labels, dtype=np.float64)
    positives = labels.sum(axis=0)
    one_class = (positives == 0) | (positives == len(labels))
    if scheme == "baseline":
        p = positives / max(len(labels), 1)
        weights = np.stack([p, 1.0 - p])
    elif scheme == "pos_weight":
        weights = np.stack([np.ones_like(positives), (len(labels) - positives) / np.maximum(positives, 1)])
    else:
        weights = np.ones((2, labels.shape[1]))
    return np.where(one_class, 1.0, weights)


@dataclass(frozen=True)
class LossWeights:
    """The (2, 3) class weights (see `class_weights`) of the training loss and of the validation loss."""

    train: np.ndarray
    valid: np.ndarray


def loss_weights(scheme: ClassWeighting, train_labels: np.ndarray, valid_labels: np.ndarray) -> LossWeights:
    """The baseline weighs each loss by the prevalence of the set it is computed on (its validation Dataset
    computes its own p); pos_weight and none use the training labels' weights for both."""
    train = class_weights(train_labels, scheme)
    valid = class_weights(valid_labels, scheme) if scheme == "baseline" else train
    return LossWeights(train, valid)


class MRNetUnitRecipe(Recipe[MRNetConfig]):
    """Class-weighted BCE on the unit's tasks; validation loss (the checkpoint criterion) and AUROC per task."""

    monitor = "val/loss"
    mode = "min"

    def __init__(self, config: MRNetConfig, unit: Unit, weights: LossWeights, model: SeriesClassifier | None = None):
        super().__init__(config)
        self.unit = unit
        self.model = model if model is not None else build_unit_model(config, unit)
        self.columns = [TASKS.index(task) for task in unit.tasks]
        self.train_weights: torch.Tensor
        self.valid_weights: torch.Tensor
        for name, values in (("train_weights", weights.train), ("valid_weights", weights.valid)):
            self.register_buffer(name, torch.as_tensor(values[:, self.columns], dtype=torch.float32), persistent=False)
        self.latest_metrics: dict[str, Any] = {}

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        packed = batch["planes"][self.unit.plane]
        return self.model(packed["slices"], packed["lengths"])

    def _step(
        self, batch: dict[str, Any], weights: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, logits, targets, readable): the weighted BCE averaged over tasks, then over readable exams."""
        readable = self.readable_mask(batch["errors"][self.unit.plane])
        logits = self(batch).float()
        target = batch["labels"][:, self.columns]
        per_exam = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        per_exam = per_exam * (target * weights[1] + (1 - target) * weights[0])
        loss = (per_exam.mean(dim=1) * readable).sum() / readable.sum().clamp(min=1.0)
        return loss, logits, target, readable.bool()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _, _, _ = self._step(batch, self.train_weights)
        self.log("train/loss_step", loss, prog_bar=True, batch_size=len(batch["index"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, logits, target, readable = self._step(batch, self.valid_weights)
        self.log("val/loss", loss, on_epoch=True, batch_size=max(1, int(readable.sum())), sync_dist=True)
        self.validation.add(batch["index"], logits=logits, labels=target, readable=readable)

    def on_validation_epoch_end(self) -> None:
        found = self.validation.gather(self)  # DDP: the whole split
        if not len(found):
            return
        keep = found["readable"].astype(bool)
        logits, labels = found["logits"][keep], found["labels"][keep]
        aurocs = {task: roc_auc(labels[:, k], logits[:, k]) for k, task in enumerate(self.unit.tasks)}
        for task, value in aurocs.items():
            self.log(f"val/auroc_{task}", value, sync_dist=True)  # gathered: equal on every rank
        finite = [v for v in aurocs.values() if not np.isnan(v)]
        self.log("val/auroc", float(np.mean(finite)) if finite else float("nan"), sync_dist=True)
        self.latest_metrics = {task: _finite(v) for task, v in aurocs.items()}

    def export(self, run: RunDir, epoch: int) -> None:
        """Write this unit's weights and its validation AUROCs (the best validation loss so far)."""
        val_loss = self.trainer.callback_metrics.get("val/loss")
        save_weights(
            run.weights,
            self.model.state_dict(),
            {"task": "mrnet", "unit": self.unit.name, "tasks": ",".join(self.unit.tasks), "epoch": str(epoch)},
        )
        metrics = {"unit": self.unit.name, "epoch": epoch, "val_loss": None if val_loss is None else float(val_loss)}
        run.write_json("metrics.json", {**metrics, "auroc": self.latest_metrics})


def fit(context: FitContext[MRNetConfig]) -> dict[str, Any]:
    """Train (or resume) every unit, fit the fusion, return the valid-split metrics (rank 0; {} elsewhere)."""
    config, root, run = context.config, context.data_root, context.run
    train_ids, train_labels = read_split_labels(root, "train")
    validation: Validation = ("valid", None)
    if config.train.folds is not None:
        train_ids, train_labels, validation = _fold(config, train_ids, train_labels)
    weights = loss_weights(config.train.class_weighting, train_labels, _split_labels(root, validation)[1])
    units = units_for(config)
    for number, unit in enumerate(units, start=1):
        info(f"unit {number}/{len(units)}: {unit.name} ({', '.join(unit.tasks)})")
        train_unit(context, unit_run(run, unit), unit, weights, train_ids, validation)
    fusion_logits: Logits = {}
    if config.fusion.source == "oof":
        fusion_logits = _out_of_fold_logits(context, units, train_ids, train_labels, weights, validation)
    if not context.primary:  # a DDP worker: the networks are trained; rank 0 fits the fusion and writes
        return {}
    if config.fusion.source != "oof":
        fusion_logits = _logits(config, load_units(config, run), root, "train", train_ids)
    fusion = fit_fusion(fusion_logits, train_labels, config.train.tasks, config.train.planes, config.fusion.source)
    run.write_json("fusion.json", fusion)
    metrics = _validate(config, root, run, units, fusion, validation)
    run.write_json("metrics.json", metrics)
    _merge_histories(run, units)
    return metrics


def train_unit(
    context: FitContext[MRNetConfig],
    sub: RunDir,
    unit: Unit,
    weights: LossWeights,
    ids: list[str],
    validation: Validation = ("valid", None),
) -> None:
    """One unit's Lightning run in `sub` (skipped when a resumed run already finished it): trained on the
    exams `ids` of the train split, validated on the `validation` (split, exams)."""
    config, root = context.config, context.data_root

    def fit_unit(checkpoint: Path | None) -> L.Trainer:
        aug, size, seed = config.augment, config.data.image_size, config.train.seed
        augment = VolumeTransform(
            size, train=True, rotate_deg=aug.rotate_deg, shift_px=aug.shift_px, hflip=aug.hflip, seed=seed
        )
        train_set = MRNetDataset(root, "train", augment, planes=(unit.plane,), ids=ids)
        valid_set = MRNetDataset(root, validation[0], VolumeTransform(size), planes=(unit.plane,), ids=validation[1])
        loading = {"batch_size": config.train.batch_size, "num_workers": config.data.num_workers}
        return fit_recipe(
            MRNetUnitRecipe(config, unit, weights),
            sub,
            config.train,
            epoch_loader(train_set, shuffle=True, collate_fn=collate_exams, **loading),
            epoch_loader(valid_set, shuffle=False, collate_fn=collate_exams, **loading),
            checkpoint,
        )

    fit_stage(sub, context.resume, config.train.seed, fit_unit)


def _out_of_fold_logits(
    context: FitContext[MRNetConfig],
    units: list[Unit],
    ids: list[str],
    labels: np.ndarray,
    weights: LossWeights,
    validation: Validation,
) -> dict[tuple[str, str], np.ndarray]:
    """Logits for every training exam from networks that did not see it (k extra trainings per unit)."""
    config, run = context.config, context.run
    logits = {(task, unit.plane): np.full(len(ids), np.nan) for unit in units for task in unit.tasks}
    folds = stratified_folds(labels[:, TASKS.index("abnormal")], config.fusion.folds, config.train.seed)
    for fold, (kept, held_out) in enumerate(folds):
        for unit in units:
            info(f"fold {fold + 1}/{len(folds)}, unit {unit.name}")
            train_unit(context, unit_run(run, unit, fold), unit, weights, [ids[i] for i in kept], validation)
        if not context.primary:
            continue
        fold_models = load_units(config, run, fold)
        for key, values in _logits(config, fold_models, context.data_root, "train", [ids[i] for i in held_out]).items():
            logits[key][held_out] = values
    return logits


def _fold(config: MRNetConfig, ids: list[str], labels: np.ndarray) -> tuple[list[str], np.ndarray, Validation]:
    """Fold `train.fold` of `train.folds` of the train split: (kept ids, their labels, the held-out exams)."""
    folds = config.train.folds
    if folds is None or config.train.fold >= folds:
        raise RadlabConfigError(f"train.fold must be below train.folds ({folds})")
    abnormal = labels[:, TASKS.index("abnormal")]
    kept, held_out = stratified_folds(abnormal, folds, config.train.seed)[config.train.fold]
    return [ids[i] for i in kept], labels[kept], ("train", [ids[i] for i in held_out])


def _validate(
    config: MRNetConfig, root: Path, run: RunDir, units: list[Unit], fusion: dict, validation: Validation
) -> dict[str, Any]:
    """The fused model on the validation exams: official AUROCs, per-plane AUROCs, valid_predictions.csv."""
    split = validation[0]
    ids, labels = _split_labels(root, validation)
    logits = _logits(config, load_units(config, run), root, split, ids)
    probs, _ = apply_fusion(fusion, logits, len(ids))
    per_plane: dict[str, dict[str, float | None]] = {task: {} for task in config.train.tasks}
    for (task, plane), values in logits.items():
        per_plane[task][plane] = _finite(roc_auc(labels[:, TASKS.index(task)], values))
    columns = [TASKS.index(t) for t in config.train.tasks]
    write_case_table(
        run.file(CASES_FILE),
        ids,
        list(config.train.tasks),
        labels[:, columns],
        probs[:, columns],
        inputs=[str(volume_path(root, split, config.train.planes[0], i)) for i in ids],
    )
    return {
        "valid": official_scores(labels, probs, config.train.tasks),
        "per_plane": per_plane,
        "units": {unit.name: unit_run(run, unit).read_json("metrics.json") for unit in units},
    }


def _split_labels(root: Path, validation: Validation) -> tuple[list[str], np.ndarray]:
    """(exam ids, their (n, 3) labels) of the validation exams: a whole split, or the listed exams of it."""
    split, ids = validation
    all_ids, all_labels = read_split_labels(root, split)
    if ids is None:
        return all_ids, all_labels
    position = {exam: k for k, exam in enumerate(all_ids)}
    return ids, all_labels[[position[exam] for exam in ids]]


def _logits(config: MRNetConfig, models: dict, root: Path, split: str, ids: list[str]) -> Logits:
    """Logits of `models` for the exams `ids` of a split (evaluation transform, no augmentation)."""
    paths = {plane: [volume_path(root, split, plane, i) for i in ids] for plane in config.train.planes}
    return unit_logits(
        models, paths, config.data.image_size, batch_size=config.predict.batch_size, num_workers=config.data.num_workers
    )


def _merge_histories(run: RunDir, units: list[Unit]) -> None:
    """RUN/history.csv: every unit's (and fusion fold's) epochs, with the unit and fold named."""
    rows = []
    for unit in units:
        for path in sorted(unit_run(run, unit).root.rglob("history.csv")):
            part = path.parent.name if path.parent.name.startswith("fold") else ""
            rows += [{"unit": unit.name, "fold": part, **row} for row in read_history(path)]
    write_history(run.history, rows)


def held_out_scores(metrics: dict[str, Any]) -> dict[str, float | None]:
    """What an ensemble manifest and tuning read of one run: its validation AUROCs after fusion."""
    return dict(metrics.get("valid", {}))


def describe(metrics: dict[str, Any], out: Path) -> str:
    """The line `train` prints at the end."""
    return f"valid: {json.dumps(metrics['valid'])}; fusion and weights in {out}"


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


TRAINING = Training(data_root=resolve_data_root, fit=fit, held_out=held_out_scores, describe=describe)
