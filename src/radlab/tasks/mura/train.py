"""`radlab mura train`: data, recipe and Lightning trainer wired together; the run directory kept current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from radlab.core.engine.loaders import epoch_loader
from radlab.core.engine.session import is_primary_process, open_run
from radlab.core.engine.trainer import build_trainer
from radlab.core.errors import RadlabConfigError
from radlab.core.transforms import build_image_transform
from radlab.tasks.mura.config import MuraConfig, load_mura_config
from radlab.tasks.mura.data import MuraDataset, class_weights, fold_split, split_statistics
from radlab.tasks.mura.formats import resolve_data_root
from radlab.tasks.mura.recipe import MuraRecipe


def train(
    data_root: str | Path,
    out: str | Path,
    config_name: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    resume: bool = False,
) -> dict[str, Any]:
    """Train (or resume) a MURA model into `out`; returns the kept checkpoint's metrics."""
    root = resolve_data_root(data_root)
    run, config, checkpoint = open_run(out, MuraConfig, load_mura_config, config_name, overrides, resume)

    L.seed_everything(config.train.seed, workers=True, verbose=False)
    data, aug = config.data, config.augment
    train_studies, valid_split, valid_studies = None, "valid", None
    if config.train.folds is not None:
        if config.train.fold >= config.train.folds:
            raise RadlabConfigError(f"train.fold must be below train.folds ({config.train.folds})")
        train_studies, valid_studies = fold_split(root, config.train.folds, config.train.fold, config.train.seed)
        valid_split = "train"
    train_set = MuraDataset(
        root,
        "train",
        build_image_transform(
            data.image_size,
            train=True,
            hflip=aug.hflip,
            rotate_deg=aug.rotate_deg,
            resize=data.resize,
            seed=config.train.seed,
        ),
        cache_dir=data.cache_dir,
        resize=data.resize,
        augment=True,
        studies=train_studies,
    )
    valid_set = MuraDataset(
        root,
        valid_split,
        build_image_transform(data.image_size, resize=data.resize),
        cache_dir=data.cache_dir,
        resize=data.resize,
        studies=valid_studies,
    )
    weights = class_weights(train_set.split, config.train.loss_weighting)
    if is_primary_process():
        stats = {"data_root": str(root.resolve()), **split_statistics(train_set.split, weights)}
        run.write_json("data_stats.json", stats)

    recipe = MuraRecipe(config, weights, valid_set.split, validation_paths=valid_set.paths)
    monitor = config.train.monitor
    trainer = build_trainer(config.train, run, monitor=f"val/{monitor}", mode="min" if monitor == "loss" else "max")
    trainer.fit(
        recipe,
        train_dataloaders=epoch_loader(train_set, shuffle=True, **_loading(config)),
        val_dataloaders=epoch_loader(valid_set, shuffle=False, **_loading(config)),
        ckpt_path=str(checkpoint) if checkpoint else None,
    )
    metrics = run.read_json("metrics.json")
    metrics["stopped_epoch"] = trainer.current_epoch
    return metrics


def held_out_scores(metrics: dict[str, Any]) -> dict[str, float | None]:
    """What an ensemble manifest records of one fold: its held-out kappa and AUROC."""
    overall = metrics.get("study_level", {}).get("Overall", {})
    return {"kappa": overall.get("kappa"), "auroc": overall.get("auroc")}


def _loading(config: MuraConfig) -> dict[str, int]:
    return {"batch_size": config.train.batch_size, "num_workers": config.data.num_workers}
