"""`radlab ich train`: the slice CNN, its embeddings with TTA, then the sequence model, each a stage; both
LightningModules optimise the competition metric directly.

RUN/slice/ is the slice classifier's run, RUN/embeddings/ the cached embeddings of the fold's training and
validation images, RUN/sequence/ the BiLSTM's run with its epoch snapshots. `--stage sequence` retrains the
sequence model alone from the cached embeddings (the recipe's fast mode); `--stage slice` or `embed` stop
after that stage. RUN/metrics.json compares, on the validation fold, the slice CNN alone with the sequence
model (the average of its kept epochs).
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch.utils.data import DataLoader

from radlab.core.console import info, warn
from radlab.core.engine.callbacks import read_history, write_history
from radlab.core.engine.driver import FitContext, Training, fit_recipe, fit_stage
from radlab.core.engine.ensemble import ENSEMBLE_FILE, KEPT_FOLDER, kept_members, write_manifest
from radlab.core.engine.loaders import epoch_loader
from radlab.core.engine.recipe import Recipe
from radlab.core.engine.run_dir import RunDir
from radlab.core.engine.snapshots import KeptEpochs
from radlab.core.errors import RadlabError
from radlab.core.io.cache import content_key
from radlab.core.models import ImageClassifier, load_trained, save_weights
from radlab.core.report.cases import CASES_FILE, read_case_table, write_case_table
from radlab.tasks.ich import IchConfig
from radlab.tasks.ich.data import (
    SequenceDataset,
    SliceDataset,
    SliceTransform,
    TrainingTable,
    collate_sequences,
    fold_rows,
    read_training_table,
)
from radlab.tasks.ich.evaluate import scores
from radlab.tasks.ich.formats import SUBTYPES, WEIGHTS, resolve_data_root
from radlab.tasks.ich.model import (
    Embedded,
    SequenceModel,
    build_slice_model,
    cached_embedded,
    embed_slices,
    embedding_source,
    load_snapshots,
    save_embedded,
    sequence_probs,
    snapshot_path,
    snapshots,
)


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean over kept rows of sum_j w_j BCE_j / sum_j w_j (w = 2 for "any", 1 otherwise): the metric."""
    weights = torch.as_tensor(WEIGHTS, dtype=logits.dtype, device=logits.device)
    per_row = (F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * weights).sum(-1) / weights.sum()
    keep = keep.to(per_row.dtype)
    return (per_row * keep).sum() / keep.sum().clamp(min=1.0)


class SliceRecipe(Recipe[IchConfig]):
    """The slice classifier: Adam at a fixed rate (no schedule, as the recipe), the best validation loss kept."""

    def __init__(self, config: IchConfig) -> None:
        super().__init__(config)
        self.model = build_slice_model(config)
        self.latest: dict[str, Any] = {}

    def _step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        keep = torch.tensor(self.readable(batch["error"]), device=self.device)
        logits = self.model(batch["image"]).float()
        return weighted_bce(logits, batch["labels"], keep), logits, keep

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _, keep = self._step(batch)
        self.log("train/loss_step", loss, prog_bar=True, batch_size=max(1, int(keep.sum())))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, logits, keep = self._step(batch)
        self.log("val/loss", loss, on_epoch=True, batch_size=max(1, int(keep.sum())), sync_dist=True)
        index = torch.as_tensor(batch["index"])[keep.cpu()]
        self.validation.add(index, labels=batch["labels"][keep], probs=torch.sigmoid(logits[keep]))

    def on_validation_epoch_end(self) -> None:
        found = self.validation.gather(self)  # DDP: the whole split
        if len(found):
            self.latest = scores(found["labels"], found["probs"], clip=self.config.train.validation_clip)
            self.log("val/weighted_log_loss", self.latest["weighted_log_loss"], sync_dist=True)  # equal on every rank

    def configure_optimizers(self) -> Any:  # a bare optimiser: no schedule, as the recipe
        return torch.optim.Adam(self.parameters(), lr=self.config.train.lr)

    def export(self, run: RunDir, epoch: int) -> None:
        save_weights(run.weights, self.model.state_dict(), {"task": "ich", "stage": "slice", "epoch": str(epoch)})
        run.write_json("metrics.json", {"epoch": epoch, **self.latest})


class SequenceRecipe(Recipe[IchConfig]):
    """The sequence BiLSTM over cached embeddings: Adam with StepLR; the weights of the last `keep_epochs`
    epochs are saved (snapshots/epoch_NN.safetensors) so that their predictions can be averaged."""

    def __init__(self, config: IchConfig, embedding_dim: int, run: RunDir) -> None:
        super().__init__(config)
        self.run = run
        self.model = SequenceModel(embedding_dim, config.sequence.packing)

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

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        sequence = self.config.sequence
        optimizer = torch.optim.Adam(self.parameters(), lr=sequence.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=sequence.step_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def export(self, run: RunDir, epoch: int) -> None:
        save_weights(run.weights, self.model.state_dict(), {"task": "ich", "stage": "sequence", "epoch": str(epoch)})
        loss = self.trainer.callback_metrics.get("val/loss")
        run.write_json("metrics.json", {"epoch": epoch, "val_loss": None if loss is None else float(loss)})


def fit(context: FitContext[IchConfig]) -> dict[str, Any]:
    """Run every stage, or only `context.stage`; returns RUN/metrics.json."""
    config, run, stage, resume = context.config, context.run, context.stage, context.resume
    table = read_training_table(context.data_root, config.data.slice_order)
    train_rows, valid_rows = fold_rows(table, config)
    slice_run, sequence_run, cache = RunDir(run.root / "slice"), RunDir(run.root / "sequence"), run.root / "embeddings"

    kept = _kept_epochs(config, run)
    if stage in (None, "slice"):
        info("stage 1/3: slice classifier")
        fit_stage(
            slice_run,
            resume,
            config.train.seed,
            lambda checkpoint: _fit_slices(config, slice_run, table, train_rows, valid_rows, checkpoint, kept),
        )
    if not context.primary:
        # A DDP worker: the slice CNN (the stage worth several devices) is trained. Rank 0 embeds and trains
        # the small sequence model on one device (sequence.devices).
        return {}
    splits = {"train": train_rows, "valid": valid_rows}
    if kept is not None:
        return _fit_members(context, table, splits, kept)
    embedded = _embed_and_sequence(context, table, splits, slice_run, sequence_run, cache)
    return _finish(config, run, table, valid_rows, embedded.get("valid"), sequence_run)


def _embed_and_sequence(
    context: FitContext[IchConfig],
    table: TrainingTable,
    splits: dict[str, list[int]],
    slice_run: RunDir,
    sequence_run: RunDir,
    cache: Path,
) -> dict[str, Embedded]:
    """Stages 2 and 3 for one slice CNN: its embeddings (cached, or made again when they no longer match)
    and the sequence model trained on them, as far as `context.stage` asks; returns the embeddings."""
    config, stage, resume = context.config, context.stage, context.resume
    if stage == "slice":  # the embeddings of the old weights no longer match: only report what still does
        return _cached(config, slice_run, table, splits, cache)
    info("stage 2/3: embeddings averaged over TTA (" + ", ".join(config.embeddings.tta) + ")")
    embedded = _embed(config, slice_run, table, splits, cache, reuse=resume or stage == "sequence")
    if stage in (None, "sequence"):
        info("stage 3/3: sequence model")
        if stage == "sequence" and not resume and sequence_run.root.exists():
            shutil.rmtree(sequence_run.root)
        train_rows, valid_rows = splits["train"], splits["valid"]
        fit = partial(_fit_sequence, config, sequence_run, embedded, table, train_rows, valid_rows)
        fit_stage(sequence_run, resume, config.sequence.seed, fit)
    return embedded


def _kept_epochs(config: IchConfig, run: RunDir) -> KeptEpochs | None:
    """Where the slice CNN's kept epochs go (`train.snapshots` / `train.snapshot_epochs`): each a whole ICH
    run of its own, RUN/kept/epoch<e>/, whose slice/ holds that epoch's CNN."""
    engine = config.train
    if engine.snapshots is None and engine.snapshot_epochs is None:
        return None
    return KeptEpochs(run.root, engine.snapshots, engine.snapshot_epochs, inside="slice", manifest=False, task="ich")


def _fit_members(
    context: FitContext[IchConfig], table: TrainingTable, splits: dict[str, list[int]], kept: KeptEpochs
) -> dict[str, Any]:
    """The recipe's ensemble over CNN epochs: for each kept epoch its own embeddings and sequence model (the
    stages asked for), then RUN/ensemble.json naming them and RUN/metrics.json scoring their average."""
    config, run = context.config, context.run
    members = _best_first(kept_members(run.root), RunDir(run.root / "slice"))
    if not members:
        raise RadlabError(f"{run.root / KEPT_FOLDER}: no kept slice-CNN epochs (train the slice stage first)")
    scored = []
    for k, member in enumerate(members):
        info(f"CNN {member.name} ({k + 1}/{len(members)})")
        sequence_run = RunDir(member / "sequence")
        embedded = _embed_and_sequence(
            context, table, splits, RunDir(member / "slice"), sequence_run, member / "embeddings"
        )
        scored.append(_finish(config, RunDir(member), table, splits["valid"], embedded.get("valid"), sequence_run))
    if not all(snapshots(member / "sequence") for member in members):  # --stage slice or embed: not yet
        info(f"the kept CNN epochs have no sequence models yet; {ENSEMBLE_FILE} is written once they do")
        (run.root / ENSEMBLE_FILE).unlink(missing_ok=True)
        return _finish_members(config, run, members)
    write_manifest(
        run.root,
        "ich",
        [m.relative_to(run.root).as_posix() for m in members],
        [held_out_scores(m) for m in scored],
        kind="epochs",
        selected_on={"score": "val/loss", "stage": "slice", "better": "lower"}
        | ({"keep": kept.best} if kept.best is not None else {"epochs": list(kept.epochs or ())}),
    )
    return _finish_members(config, run, members)


def _best_first(members: list[Path], slice_run: RunDir) -> list[Path]:
    """The kept CNN epochs by their validation loss, lowest first (as the kept epochs of any run are listed)."""
    losses = {int(row["epoch"]): float(row.get("val/loss") or "nan") for row in read_history(slice_run.history)}

    def rank(member: Path) -> tuple[bool, float, int]:
        epoch = int(member.name.removeprefix("epoch"))
        loss = losses.get(epoch, float("nan"))
        return np.isnan(loss), loss, epoch

    return sorted(members, key=rank)


def _finish_members(config: IchConfig, run: RunDir, members: list[Path]) -> dict[str, Any]:
    """RUN/metrics.json and the case table of the members' average (the validation images they all scored)."""
    tables = [read_case_table(m / CASES_FILE) for m in members if (m / CASES_FILE).is_file()]
    metrics: dict[str, Any] = {"members": [m.relative_to(run.root).as_posix() for m in members]}
    if tables:
        common = sorted(set.intersection(*(set(t.cases) for t in tables)))
        rows = [{case: i for i, case in enumerate(t.cases)} for t in tables]
        probs = np.mean([t.probs[[r[c] for c in common]] for t, r in zip(tables, rows, strict=True)], axis=0)
        first = tables[0]
        order = [rows[0][c] for c in common]
        truth = first.truth[order]
        metrics["sequence"] = scores(truth, probs, clip=config.train.validation_clip)
        metrics["validation_images"] = len(common)
        metrics["sequence_epochs_averaged"] = sum(
            RunDir(m).read_json("metrics.json").get("sequence_epochs_averaged", 0) for m in members
        )
        slice_scores = [RunDir(m).read_json("metrics.json").get("slice_cnn") for m in members]
        scored = [s for s in slice_scores if s and s.get("weighted_log_loss") is not None]
        metrics["slice_cnn"] = min(scored, key=lambda s: s["weighted_log_loss"], default=None)
        write_case_table(
            run.file(CASES_FILE),
            common,
            SUBTYPES,
            truth,
            probs,
            groups=[first.groups[i] for i in order],
            inputs=[first.inputs[i] for i in order],
        )
    run.write_json("metrics.json", metrics)
    history = [{"stage": "slice", **row} for row in read_history(run.root / "slice" / "history.csv")]
    if history:
        write_history(run.history, history)
    return metrics


def _fit_slices(
    config: IchConfig,
    sub: RunDir,
    table: TrainingTable,
    train_rows: list[int],
    valid_rows: list[int],
    checkpoint: Path | None,
    kept: KeptEpochs | None = None,
) -> L.Trainer:
    data = config.data

    def dataset(rows: list[int], transform: SliceTransform) -> SliceDataset:
        paths = [table.infos[i].path for i in rows]
        fix, cache_dir = data.pixel_representation_fix, data.cache_dir
        return SliceDataset(paths, data.image_size, transform, table.labels[rows], data.crop, fix, cache_dir=cache_dir)

    loader = partial(epoch_loader, batch_size=config.train.batch_size, num_workers=data.num_workers, collate_fn=None)
    augment = SliceTransform(True, config.augment, config.train.seed)
    train_loader = loader(dataset(train_rows, augment), shuffle=True)
    valid_loader = loader(dataset(valid_rows, SliceTransform()), shuffle=False)
    return fit_recipe(SliceRecipe(config), sub, config.train, train_loader, valid_loader, checkpoint, kept)


def _sources(
    config: IchConfig, slice_run: RunDir, table: TrainingTable, splits: dict[str, list[int]]
) -> dict[str, tuple[list[Path], dict[str, Any]]]:
    """Per split: its slice paths and what embeddings of them must have been made from."""
    if not slice_run.weights.is_file():
        raise RadlabError(f"{slice_run.root} has no trained slice classifier; run --stage all first")
    weights_key = content_key(slice_run.weights)  # hashed once for both splits
    found = {}
    for name, rows in splits.items():
        paths = [table.infos[i].path for i in rows]
        found[name] = paths, embedding_source(config, weights_key, paths)
    return found


def _cached(
    config: IchConfig, slice_run: RunDir, table: TrainingTable, splits: dict[str, list[int]], cache: Path
) -> dict[str, Embedded]:
    """The splits whose cached embeddings were made from the current weights, slices and settings."""
    found = {}
    for name, (paths, source) in _sources(config, slice_run, table, splits).items():
        embedded, _ = cached_embedded(cache, name, [p.stem for p in paths], source)
        if embedded is not None:
            found[name] = embedded
    return found


def _embed(
    config: IchConfig,
    slice_run: RunDir,
    table: TrainingTable,
    splits: dict[str, list[int]],
    cache: Path,
    reuse: bool,
) -> dict[str, Embedded]:
    """Embeddings of each split: the cached ones when `reuse` and they match what they would be made from
    now, else computed (and cached) again, saying why."""
    model: ImageClassifier | None = None
    found = {}
    for name, (paths, source) in _sources(config, slice_run, table, splits).items():
        cached, why = cached_embedded(cache, name, [p.stem for p in paths], source) if reuse else (None, "")
        if cached is not None:
            info(f"{name} slices: the cached embeddings match these weights and slices")
            found[name] = cached
            continue
        if why and why != "missing":
            warn(f"{cache / name}.json: {why}; embedding again")
        if model is None:
            model = build_slice_model(config, initialise=False)
            load_trained(model, slice_run.weights, config.model.backbone)
        found[name] = embed_slices(model, paths, config, description=f"{name} slices")
        save_embedded(cache, name, found[name], source)
    return found


def _fit_sequence(
    config: IchConfig,
    sub: RunDir,
    embedded: dict[str, Embedded],
    table: TrainingTable,
    train_rows: list[int],
    valid_rows: list[int],
    checkpoint: Path | None,
) -> L.Trainer:
    data = {}
    for name, rows in (("train", train_rows), ("valid", valid_rows)):
        got = embedded[name]
        data[name] = SequenceDataset(got.embeddings, table.series(rows, got.readable), table.labels[rows])
    batch = config.sequence.batch_size
    recipe = SequenceRecipe(config, data["train"].embeddings.shape[1], sub)
    train_loader = DataLoader(data["train"], batch_size=batch, shuffle=True, collate_fn=collate_sequences)
    valid_loader = DataLoader(data["valid"], batch_size=batch, collate_fn=collate_sequences)
    return fit_recipe(recipe, sub, config.sequence, train_loader, valid_loader, checkpoint)


def _finish(
    config: IchConfig,
    run: RunDir,
    table: TrainingTable,
    valid_rows: list[int],
    embedded: Embedded | None,
    sequence_run: RunDir,
) -> dict[str, Any]:
    """Validation scores of the slice CNN alone and of the sequence model, into RUN/metrics.json."""
    metrics: dict[str, Any] = {"skipped_files": [[str(p), reason] for p, reason in table.skipped]}
    if embedded is not None:
        truth, ok = table.labels[valid_rows], embedded.readable
        metrics["validation_images"] = int(ok.sum())
        metrics["unreadable_validation_images"] = [embedded.images[k] for k in np.flatnonzero(~ok)]
        clip = config.train.validation_clip
        metrics["slice_cnn"] = scores(truth[ok], embedded.probs[ok], clip=clip)
        models = load_snapshots(sequence_run.root, embedded.embeddings.shape[1], config.sequence.packing)
        if models:
            probs = sequence_probs(models, embedded.embeddings, table.series(valid_rows, ok))
            seen = ~np.isnan(probs[:, 0])
            metrics["sequence"] = scores(truth[seen], probs[seen], clip=clip)
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
    return {name: metrics[name]["weighted_log_loss"] if name in metrics else None for name in ("slice_cnn", "sequence")}


def describe(metrics: dict[str, Any], out: Path) -> str:
    """Both validation losses and where the run is, printed when training ends."""
    losses = held_out_scores(metrics)
    parts = [f"{name} {loss:.4f}" for name, loss in losses.items() if loss is not None]
    return f"validation weighted log loss: {', '.join(parts) or 'n/a'}; run in {out}"


TRAINING = Training(
    data_root=resolve_data_root,
    fit=fit,
    held_out=held_out_scores,
    describe=describe,
    lower_is_better=frozenset({"slice_cnn", "sequence"}),  # weighted log losses
)
