"""`radlab ich train`: the slice CNN, its embeddings with TTA, then the sequence model, each a stage.

RUN/slice/ is the slice classifier's run, RUN/embeddings/ the cached embeddings of the fold's training and
validation images, RUN/sequence/ the BiLSTM's run with its epoch snapshots. `--stage sequence` retrains the
sequence model alone from the cached embeddings (the recipe's fast mode); `--stage slice` or `embed` stop
after that stage. RUN/metrics.json compares, on the validation fold, the slice CNN alone with the sequence
model (the average of its kept epochs).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from radlab.core.config import config_to_yaml, deep_merge, parse_overrides, read_yaml, validate_config
from radlab.core.console import info
from radlab.core.engine.callbacks import read_history, write_history
from radlab.core.engine.folds import stratified_folds
from radlab.core.engine.loaders import epoch_loader
from radlab.core.engine.run_dir import RunDir
from radlab.core.engine.session import is_primary_process, open_run
from radlab.core.engine.trainer import build_trainer
from radlab.core.errors import RadlabConfigError, RadlabDataError, RadlabError
from radlab.core.io.atomic import atomic_write_text
from radlab.core.models import load_weights
from radlab.core.report.cases import CASES_FILE, write_case_table
from radlab.tasks.ich.config import IchConfig, load_ich_config
from radlab.tasks.ich.data import SequenceDataset, SliceDataset, SliceTransform, collate_sequences
from radlab.tasks.ich.embeddings import embed_slices, has_embedded, load_embedded, save_embedded
from radlab.tasks.ich.evaluate import scores
from radlab.tasks.ich.formats import SUBTYPES, TRAIN_CSV, TRAIN_IMAGES, read_labels
from radlab.tasks.ich.inference import load_snapshots, sequence_probs
from radlab.tasks.ich.metadata import SliceInfo, read_metadata, sequences
from radlab.tasks.ich.model import build_slice_model
from radlab.tasks.ich.recipe import SequenceRecipe, SliceRecipe

Stage = Literal["all", "slice", "embed", "sequence"]


@dataclass
class TrainingTable:
    """Labelled images whose header reads: header info, labels, and the files skipped."""

    infos: list[SliceInfo]
    labels: np.ndarray
    skipped: list[tuple[Path, str]]

    def series(self, rows: list[int], readable: np.ndarray) -> list[list[int]]:
        """Series of the readable images among `rows` (positions within `rows`), each sorted by z."""
        groups = sequences([self.infos[i] for i in rows])
        return [kept for group in groups if (kept := [k for k in group if readable[k]])]


def resolve_data_root(folder: str | Path) -> Path:
    folder = Path(folder)
    if not (folder / TRAIN_CSV).is_file():
        raise RadlabDataError(folder / TRAIN_CSV, "missing: pass the folder that holds the challenge's files")
    return folder


def read_training_table(root: Path) -> TrainingTable:
    images, labels = read_labels(root / TRAIN_CSV)
    infos, skipped = read_metadata([root / TRAIN_IMAGES / f"{image}.dcm" for image in images])
    position = {image: i for i, image in enumerate(images)}
    return TrainingTable(infos, labels[[position[info.image] for info in infos]], skipped)


def train(
    data_root: str | Path,
    out: str | Path,
    config_name: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    resume: bool = False,
    stage: Stage = "all",
) -> dict[str, Any]:
    """Run the stages up to (or only) `stage`; returns RUN/metrics.json."""
    root = resolve_data_root(data_root)
    if stage in ("all", "slice"):
        run, config, _ = open_run(out, IchConfig, load_ich_config, config_name, overrides, resume)
    else:
        run, config = _existing_run(out, config_name, overrides)
    table = read_training_table(root)
    train_rows, valid_rows = fold_rows(table, config)
    if is_primary_process():
        run.record_data_root(root)
    slice_run, sequence_run, cache = RunDir(run.root / "slice"), RunDir(run.root / "sequence"), run.root / "embeddings"

    if stage in ("all", "slice"):
        info("stage 1/3: slice classifier")
        _train_slices(config, slice_run, table, train_rows, valid_rows, resume)
    if not is_primary_process():
        # A DDP worker: the slice CNN (the stage worth several devices) is trained. Rank 0 embeds and trains
        # the small sequence model on one device (sequence.devices).
        return {}
    cached = has_embedded(cache, "train") and has_embedded(cache, "valid")
    if stage in ("all", "embed") and not (resume and cached):
        info("stage 2/3: embeddings averaged over TTA (" + ", ".join(config.embeddings.tta) + ")")
        _embed(config, slice_run, table, {"train": train_rows, "valid": valid_rows}, cache)
    if stage in ("all", "sequence"):
        if not (has_embedded(cache, "train") and has_embedded(cache, "valid")):
            raise RadlabError(f"{run.root} has no cached embeddings; run --stage all (or embed) first")
        info("stage 3/3: sequence model")
        if stage == "sequence" and not resume and sequence_run.root.exists():
            shutil.rmtree(sequence_run.root)
        _train_sequence(config, sequence_run, cache, table, train_rows, valid_rows, resume)
    return _finish(run, table, valid_rows, cache, sequence_run)


def _existing_run(
    out: str | Path, config_name: str | None, overrides: list[str] | tuple[str, ...]
) -> tuple[RunDir, IchConfig]:
    run = RunDir(Path(out))
    if not run.config.is_file():
        raise RadlabError(f"{run.root} holds no ICH run; train with --stage all first")
    if config_name is not None:
        raise RadlabConfigError("--config cannot change an existing run; use --set key=value")
    saved = read_yaml(run.config, "run config")
    config = validate_config(IchConfig, deep_merge(saved, parse_overrides(overrides)), source=str(run.config))
    atomic_write_text(run.config, config_to_yaml(config))
    return run, config


def fold_rows(table: TrainingTable, config: IchConfig) -> tuple[list[int], list[int]]:
    """Fold `train.fold` of `train.folds`: grouped by patient, stratified on "any"."""
    if config.train.fold >= config.train.folds:
        raise RadlabConfigError(f"train.fold must be below train.folds ({config.train.folds})")
    groups = np.unique([info.patient for info in table.infos], return_inverse=True)[1]
    kept, held_out = stratified_folds(table.labels[:, 5], config.train.folds, config.train.seed, groups)[
        config.train.fold
    ]
    return kept.tolist(), held_out.tolist()


def _train_slices(
    config: IchConfig, sub: RunDir, table: TrainingTable, train_rows: list[int], valid_rows: list[int], resume: bool
) -> None:
    if resume and sub.file("done.json").is_file():
        info("  finished earlier, skipped")
        return
    sub.root.mkdir(parents=True, exist_ok=True)
    checkpoint = sub.last_checkpoint if resume and sub.last_checkpoint.is_file() else None
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    data = config.data

    def dataset(rows: list[int], transform: SliceTransform) -> SliceDataset:
        paths = [table.infos[i].path for i in rows]
        return SliceDataset(
            paths,
            data.image_size,
            transform,
            table.labels[rows],
            data.crop,
            data.pixel_representation_fix,
            cache_dir=data.cache_dir,
        )

    loading = {"batch_size": config.train.batch_size, "num_workers": data.num_workers}
    loaders = [
        epoch_loader(
            dataset(train_rows, SliceTransform(True, config.augment, config.train.seed)), shuffle=True, **loading
        ),
        epoch_loader(dataset(valid_rows, SliceTransform()), shuffle=False, **loading),
    ]
    trainer = build_trainer(config.train, sub, monitor="val/loss", mode="min")
    trainer.fit(SliceRecipe(config), *loaders, ckpt_path=str(checkpoint) if checkpoint else None)
    sub.write_json("done.json", {"epochs": trainer.current_epoch})


def _embed(
    config: IchConfig, slice_run: RunDir, table: TrainingTable, splits: dict[str, list[int]], cache: Path
) -> None:
    if not slice_run.weights.is_file():
        raise RadlabError(f"{slice_run.root} has no trained slice classifier; run --stage all first")
    model = build_slice_model(config, initialise=False)
    model.load_state_dict(load_weights(slice_run.weights))
    for name, rows in splits.items():
        paths = [table.infos[i].path for i in rows]
        save_embedded(cache, name, embed_slices(model, paths, config, description=f"{name} slices"))


def _train_sequence(
    config: IchConfig,
    sub: RunDir,
    cache: Path,
    table: TrainingTable,
    train_rows: list[int],
    valid_rows: list[int],
    resume: bool,
) -> None:
    if resume and sub.file("done.json").is_file():
        info("  finished earlier, skipped")
        return
    sub.root.mkdir(parents=True, exist_ok=True)
    checkpoint = sub.last_checkpoint if resume and sub.last_checkpoint.is_file() else None
    L.seed_everything(config.sequence.seed, workers=True, verbose=False)
    data = {}
    for name, rows in (("train", train_rows), ("valid", valid_rows)):
        embedded = load_embedded(cache, name)
        data[name] = SequenceDataset(embedded.embeddings, table.series(rows, embedded.readable), table.labels[rows])
    batch = config.sequence.batch_size
    trainer = build_trainer(config.sequence, sub, monitor="val/loss", mode="min")
    trainer.fit(
        SequenceRecipe(config, data["train"].embeddings.shape[1], sub),
        DataLoader(data["train"], batch_size=batch, shuffle=True, collate_fn=collate_sequences),
        DataLoader(data["valid"], batch_size=batch, collate_fn=collate_sequences),
        ckpt_path=str(checkpoint) if checkpoint else None,
    )
    sub.write_json("done.json", {"epochs": trainer.current_epoch})


def _finish(
    run: RunDir, table: TrainingTable, valid_rows: list[int], cache: Path, sequence_run: RunDir
) -> dict[str, Any]:
    """Validation scores of the slice CNN alone and of the sequence model, into RUN/metrics.json."""
    metrics: dict[str, Any] = {"skipped_files": [[str(p), reason] for p, reason in table.skipped]}
    if has_embedded(cache, "valid"):
        embedded = load_embedded(cache, "valid")
        truth, ok = table.labels[valid_rows], embedded.readable
        metrics["validation_images"] = int(ok.sum())
        metrics["unreadable_validation_images"] = [embedded.images[k] for k in np.flatnonzero(~ok)]
        metrics["slice_cnn"] = scores(truth[ok], embedded.probs[ok])
        models = load_snapshots(sequence_run.root, embedded.embeddings.shape[1])
        if models:
            probs = sequence_probs(models, embedded.embeddings, table.series(valid_rows, ok))
            seen = ~np.isnan(probs[:, 0])
            metrics["sequence"] = scores(truth[seen], probs[seen])
            metrics["sequence_epochs_averaged"] = len(models)
            infos = [table.infos[valid_rows[k]] for k in np.flatnonzero(seen)]
            write_case_table(
                run.file(CASES_FILE),
                [i.image for i in infos],
                SUBTYPES,
                truth[seen],
                probs[seen],
                groups=[i.series for i in infos],
                inputs=[str(i.path) for i in infos],
            )
    run.write_json("metrics.json", metrics)
    rows = [
        {"stage": stage, **row}
        for stage in ("slice", "sequence")
        for row in read_history(run.root / stage / "history.csv")
    ]
    if rows:
        write_history(run.history, rows)
    return metrics


def held_out_scores(metrics: dict[str, Any]) -> dict[str, float | None]:
    """What an ensemble manifest and tuning read of one fold: the weighted log loss of both stages."""
    return {
        stage: metrics[name]["weighted_log_loss"] if name in metrics else None
        for stage, name in (("slice_cnn", "slice_cnn"), ("sequence", "sequence"))
    }
