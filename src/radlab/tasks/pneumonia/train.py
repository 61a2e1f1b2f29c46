"""`radlab pneumonia train`: one fold of the stratified k-fold split trained and validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from radlab.core.engine.folds import stratified_folds
from radlab.core.engine.loaders import epoch_loader
from radlab.core.engine.session import is_primary_process, open_run
from radlab.core.engine.trainer import build_trainer
from radlab.core.errors import RadlabConfigError, RadlabDataError
from radlab.tasks.pneumonia.config import PneumoniaConfig, load_pneumonia_config
from radlab.tasks.pneumonia.data import DetectionTransform, PneumoniaDataset, collate_detection
from radlab.tasks.pneumonia.formats import CLASS_INFO, CLASSES, TRAIN_LABELS, read_box_labels, read_class_info
from radlab.tasks.pneumonia.recipe import PneumoniaRecipe


def resolve_data_root(folder: str | Path) -> Path:
    """The folder holding stage_2_train_labels.csv, stage_2_detailed_class_info.csv and the image folders."""
    folder = Path(folder)
    if not (folder / TRAIN_LABELS).is_file():
        raise RadlabDataError(folder / TRAIN_LABELS, "missing: pass the folder that holds the challenge's files")
    return folder


def fold_ids(root: Path, config: PneumoniaConfig) -> tuple[list[str], list[str]]:
    """(training ids, validation ids): fold `train.fold` of `train.folds`, stratified on the class."""
    patients = list(read_box_labels(root / TRAIN_LABELS))
    classes = read_class_info(root / CLASS_INFO)
    missing = [p for p in patients if p not in classes]
    if missing:
        raise RadlabDataError(root / CLASS_INFO, f"no class for {len(missing)} patients, e.g. {missing[0]}")
    train = config.train
    if train.fold >= train.folds:
        raise RadlabConfigError(f"train.fold must be below train.folds ({train.folds}), got {train.fold}")
    labels = [CLASSES.index(classes[p]) for p in patients]
    kept, held_out = stratified_folds(labels, train.folds, train.fold_seed)[train.fold]
    return [patients[i] for i in kept], [patients[i] for i in held_out]


def train(
    data_root: str | Path,
    out: str | Path,
    config_name: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    resume: bool = False,
) -> dict[str, Any]:
    """Train (or resume) the detector on one fold; returns the kept epoch's validation metrics."""
    root = resolve_data_root(data_root)
    run, config, checkpoint = open_run(out, PneumoniaConfig, load_pneumonia_config, config_name, overrides, resume)
    train_ids, valid_ids = fold_ids(root, config)
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    size = config.data.image_size
    cache = config.data.cache_dir
    train_set = PneumoniaDataset(
        root, "train", DetectionTransform(size, True, config.augment, config.train.seed), train_ids, cache
    )
    valid_set = PneumoniaDataset(root, "train", DetectionTransform(size), valid_ids, cache)
    if is_primary_process():
        run.write_json("split.json", {"fold": config.train.fold, "folds": config.train.folds, "valid": valid_ids})
        run.record_data_root(root)
    recipe = PneumoniaRecipe(config, run, valid_set.truth, [str(p) for p in valid_set.paths])
    trainer = build_trainer(config.train, run, monitor="val/map", mode="max")
    trainer.fit(
        recipe,
        train_dataloaders=epoch_loader(train_set, shuffle=True, **_loading(config)),
        val_dataloaders=epoch_loader(valid_set, shuffle=False, **_loading(config)),
        ckpt_path=str(checkpoint) if checkpoint else None,
    )
    return run.read_json("metrics.json")


def held_out_scores(metrics: dict[str, Any]) -> dict[str, float | None]:
    """What an ensemble manifest and tuning read of one fold: its held-out mAP."""
    return {"mAP": metrics.get("map")}


def _loading(config: PneumoniaConfig) -> dict:
    return {
        "batch_size": config.train.batch_size,
        "num_workers": config.data.num_workers,
        "collate_fn": collate_detection,
    }
