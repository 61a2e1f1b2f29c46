"""`radlab mrnet train`: every unit network (9 in the paper, 3 per plane), then the logistic fusion.

Each unit is its own Lightning run under RUN/units/<unit>/ (checkpoints, history, best weights); a finished
unit is skipped on --resume. The fusion is fitted on training-set logits (or out-of-fold logits from k
extra trainings per unit) and stored as RUN/fusion.json; RUN/metrics.json holds the valid-split AUROCs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from radlab.core.console import info
from radlab.core.engine.callbacks import read_history, write_history
from radlab.core.engine.folds import stratified_folds
from radlab.core.engine.loaders import epoch_loader
from radlab.core.engine.run_dir import RunDir
from radlab.core.engine.session import is_primary_process, open_run
from radlab.core.engine.trainer import build_trainer
from radlab.core.errors import RadlabConfigError
from radlab.core.metrics import roc_auc
from radlab.core.models import load_weights
from radlab.core.report.cases import CASES_FILE, write_case_table
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet.config import MRNetConfig, load_mrnet_config
from radlab.tasks.mrnet.data import MRNetDataset, collate_exams
from radlab.tasks.mrnet.evaluate import official_scores
from radlab.tasks.mrnet.formats import TASKS, read_split_labels, resolve_data_root, volume_path
from radlab.tasks.mrnet.fusion import apply_fusion, fit_fusion
from radlab.tasks.mrnet.inference import unit_logits
from radlab.tasks.mrnet.model import Unit, build_unit_model, unit_run, units_for
from radlab.tasks.mrnet.recipe import MRNetUnitRecipe, positive_weights

Validation = tuple[str, list[str] | None]
"""(split, exam ids) validated on: ("valid", None) is the official valid split, whole."""


def train(
    data_root: str | Path,
    out: str | Path,
    config_name: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    resume: bool = False,
) -> dict[str, Any]:
    """Train (or resume) every unit, fit the fusion, return the valid-split metrics."""
    root = resolve_data_root(data_root)
    run, config, _ = open_run(out, MRNetConfig, load_mrnet_config, config_name, overrides, resume)
    train_ids, train_labels = read_split_labels(root, "train")
    validation: Validation = ("valid", None)
    if config.train.folds is not None:
        train_ids, train_labels, validation = _fold(config, train_ids, train_labels)
    pos_weight = positive_weights(train_labels)
    units = units_for(config)
    for number, unit in enumerate(units, start=1):
        info(f"unit {number}/{len(units)}: {unit.name} ({', '.join(unit.tasks)})")
        train_unit(config, root, unit_run(run, unit), unit, pos_weight, resume, train_ids, validation)
    if config.fusion.source == "oof":
        fusion_logits = _out_of_fold_logits(
            config, root, run, units, train_ids, train_labels, pos_weight, resume, validation
        )
    if not is_primary_process():  # a DDP worker: the networks are trained; rank 0 fits the fusion and writes
        return {}
    run.record_data_root(root)
    if config.fusion.source != "oof":
        fusion_logits = _logits(config, load_unit_models(config, run, units), root, "train", train_ids)
    fusion = fit_fusion(fusion_logits, train_labels, config.train.tasks, config.train.planes, config.fusion.source)
    run.write_json("fusion.json", fusion)

    metrics = _validate(config, root, run, units, fusion, validation)
    run.write_json("metrics.json", metrics)
    _merge_histories(run, units)
    return metrics


def train_unit(
    config: MRNetConfig,
    root: Path,
    sub: RunDir,
    unit: Unit,
    pos_weight: np.ndarray,
    resume: bool,
    ids: list[str] | None = None,
    validation: Validation = ("valid", None),
) -> None:
    """One unit's Lightning run in `sub` (skipped when a resumed run already finished it): trained on the
    exams `ids` of the train split (all when None), validated on the `validation` (split, exams)."""
    done = sub.file("done.json")
    if resume and done.is_file():
        info(f"  {unit.name}: finished earlier, skipped")
        return
    sub.root.mkdir(parents=True, exist_ok=True)
    checkpoint = sub.last_checkpoint if resume and sub.last_checkpoint.is_file() else None
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    aug, size = config.augment, config.data.image_size
    train_transform = VolumeTransform(
        size, train=True, rotate_deg=aug.rotate_deg, shift_px=aug.shift_px, hflip=aug.hflip, seed=config.train.seed
    )
    train_set = MRNetDataset(root, "train", train_transform, planes=(unit.plane,), ids=ids)
    valid_set = MRNetDataset(root, validation[0], VolumeTransform(size), planes=(unit.plane,), ids=validation[1])
    recipe = MRNetUnitRecipe(config, unit, pos_weight)
    trainer = build_trainer(config.train, sub, monitor="val/loss", mode="min")
    trainer.fit(
        recipe,
        train_dataloaders=epoch_loader(train_set, shuffle=True, **_loading(config)),
        val_dataloaders=epoch_loader(valid_set, shuffle=False, **_loading(config)),
        ckpt_path=str(checkpoint) if checkpoint else None,
    )
    sub.write_json("done.json", {"epochs": trainer.current_epoch})


def load_unit_models(config: MRNetConfig, run: RunDir, units: list[Unit], fold: int | None = None) -> dict:
    models = {}
    for unit in units:
        model = build_unit_model(config, unit, initialise=False)
        model.load_state_dict(load_weights(unit_run(run, unit, fold).weights))
        models[unit] = model.eval()
    return models


def _out_of_fold_logits(
    config: MRNetConfig,
    root: Path,
    run: RunDir,
    units: list[Unit],
    ids: list[str],
    labels: np.ndarray,
    pos_weight: np.ndarray,
    resume: bool,
    validation: Validation,
) -> dict[tuple[str, str], np.ndarray]:
    """Logits for every training exam from networks that did not see it (k extra trainings per unit)."""
    logits = {(task, unit.plane): np.full(len(ids), np.nan) for unit in units for task in unit.tasks}
    folds = stratified_folds(labels[:, TASKS.index("abnormal")], config.fusion.folds, config.train.seed)
    for fold, (kept, held_out) in enumerate(folds):
        for unit in units:
            info(f"fold {fold + 1}/{len(folds)}, unit {unit.name}")
            sub = unit_run(run, unit, fold)
            train_unit(config, root, sub, unit, pos_weight, resume, [ids[i] for i in kept], validation)
        if not is_primary_process():
            continue
        fold_models = load_unit_models(config, run, units, fold)
        fold_logits = _logits(config, fold_models, root, "train", [ids[i] for i in held_out])
        for key, values in fold_logits.items():
            logits[key][held_out] = values
    return logits


def _fold(config: MRNetConfig, ids: list[str], labels: np.ndarray) -> tuple[list[str], np.ndarray, Validation]:
    """Fold `train.fold` of `train.folds` of the train split: (kept ids, their labels, the held-out exams)."""
    if config.train.fold >= config.train.folds:
        raise RadlabConfigError(f"train.fold must be below train.folds ({config.train.folds})")
    abnormal = labels[:, TASKS.index("abnormal")]
    kept, held_out = stratified_folds(abnormal, config.train.folds, config.train.seed)[config.train.fold]
    return [ids[i] for i in kept], labels[kept], ("train", [ids[i] for i in held_out])


def _validate(
    config: MRNetConfig, root: Path, run: RunDir, units: list[Unit], fusion: dict, validation: Validation
) -> dict[str, Any]:
    split, ids = validation
    all_ids, all_labels = read_split_labels(root, split)
    if ids is None:
        ids, labels = all_ids, all_labels
    else:
        position = {exam: k for k, exam in enumerate(all_ids)}
        labels = all_labels[[position[exam] for exam in ids]]
    logits = _logits(config, load_unit_models(config, run, units), root, split, ids)
    probs, _ = apply_fusion(fusion, logits, len(ids))
    per_plane = {
        task: {
            plane: _finite(roc_auc(labels[:, TASKS.index(task)], values))
            for (t, plane), values in logits.items()
            if t == task
        }
        for task in config.train.tasks
    }
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


def _logits(config: MRNetConfig, models: dict, root: Path, split: str, ids: list[str]) -> dict:
    """Logits of `models` for the exams `ids` of a split (evaluation transform, no augmentation)."""
    paths = {plane: [volume_path(root, split, plane, i) for i in ids] for plane in config.train.planes}
    return unit_logits(
        models,
        paths,
        config.data.image_size,
        batch_size=config.predict.batch_size,
        num_workers=config.data.num_workers,
    )


def _merge_histories(run: RunDir, units: list[Unit]) -> None:
    rows = []
    for unit in units:
        for path in sorted(unit_run(run, unit).root.rglob("history.csv")):
            part = path.parent.name if path.parent.name.startswith("fold") else ""
            rows += [{"unit": unit.name, "fold": part, **row} for row in read_history(path)]
    write_history(run.history, rows)


def held_out_scores(metrics: dict[str, Any]) -> dict[str, float | None]:
    """What an ensemble manifest and tuning read of one run: its validation AUROCs after fusion."""
    return dict(metrics.get("valid", {}))


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _loading(config: MRNetConfig) -> dict:
    return {"batch_size": config.train.batch_size, "num_workers": config.data.num_workers, "collate_fn": collate_exams}
