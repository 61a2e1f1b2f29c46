"""The one training driver every task's `train` goes through: the data folder checked, the run directory opened
(new, resumed, or an existing run for a later stage), the seed, the data root and the environment recorded
(RUN/environment.json, completed with the weights' checksums at the end), deterministic algorithms and
experiment tracking as the config asks, then the task's `fit`; `--folds K` runs it once per fold and
`train.members: N` once per seed, each writing the ensemble manifest; a run that keeps epochs
(`train.snapshots`) is scored as an ensemble when it ends.

A task says how it trains with a `Training`: `fit(context)` builds its datasets and recipe and calls
`fit_recipe` once (MURA, pneumonia) or once per stage or unit (`fit_stage`: ICH's stages, MRNet's units).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from radlab.core.config import config_to_yaml
from radlab.core.console import info, warn
from radlab.core.engine.config import EnsembleTrainConfig
from radlab.core.engine.determinism import deterministic_run
from radlab.core.engine.ensemble import (
    Selection,
    is_ensemble,
    kept_members,
    member_dir,
    read_manifest,
    score_ensemble,
    train_folds,
    train_members,
)
from radlab.core.engine.run_dir import RunDir
from radlab.core.engine.session import is_primary_process, open_run
from radlab.core.engine.tracking import tracked_run
from radlab.core.errors import Interrupted, RadlabConfigError, RadlabError
from radlab.core.io.atomic import atomic_write_text

if TYPE_CHECKING:
    import lightning as L
    from torch.utils.data import DataLoader

    from radlab.core.engine.config import EngineConfig
    from radlab.core.engine.recipe import Recipe
    from radlab.core.engine.snapshots import KeptEpochs
    from radlab.core.task import Task

C = TypeVar("C")
Metrics = dict[str, Any]


@dataclass(frozen=True)
class FitContext(Generic[C]):
    """What a task's `fit` works with: the checked data folder, the run directory (config.yaml written),
    the validated config, the checkpoint to resume from, and the stage asked for (None: every stage)."""

    data_root: Path
    run: RunDir
    config: C
    checkpoint: Path | None
    resume: bool
    stage: str | None = None

    @property
    def primary(self) -> bool:
        """False in the other processes of a distributed run (rank 0 alone writes the run directory)."""
        return is_primary_process()


@dataclass(frozen=True)
class Training:
    """How a task trains.

    `data_root(folder)` checks the layout and returns the folder its files are relative to; `fit(context)`
    trains and returns the run's metrics; `held_out(metrics)` is what an ensemble manifest records of one
    fold (the objective's metric among them); `describe(metrics, out)` is what `train` prints at the end
    (a string or a rich renderable)."""

    data_root: Callable[[Path], Path]
    fit: Callable[[FitContext[Any]], Metrics]
    held_out: Callable[[Metrics], dict[str, float | None]]
    describe: Callable[[Metrics, Path], Any]
    lower_is_better: frozenset[str] = frozenset()
    """Held-out score names (beyond the objective's and those ending in "loss") that are better lower."""


def train(
    task: Task,
    data_root: str | Path,
    out: str | Path,
    config_name: str | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    *,
    folds: int | None = None,
    stage: str | None = None,
) -> Metrics:
    """Train (or resume) one run of `task` into `out`, or with `folds` every fold of a k-fold split into
    `out/fold<i>/` plus `out/ensemble.json`; returns the run's metrics (the manifest for folds)."""
    training = task.training.get()
    if stage is not None and stage not in task.stages:
        known = ", ".join(task.stages) or "none"
        raise RadlabConfigError(f"{task.name} has no training stage {stage!r} (its stages: {known})")
    plan = _members_plan(task, Path(out), config_name, overrides, resume or stage is not None)
    if plan is not None and stage is not None:
        raise RadlabConfigError(
            "a train.members ensemble trains every stage of every member; leave out --stage, or give one "
            "member's folder (e.g. member0/) as --out"
        )
    if folds is not None:
        if stage is not None:
            raise RadlabConfigError("--folds trains every stage of every fold; leave out --stage")
        if plan is not None:
            raise RadlabConfigError("--folds and train.members are two ensembles; pick one")

        def one_fold(target: Path, sets: list[str], fold_resume: bool) -> Metrics:
            return _train_run(task, data_root, target, None if fold_resume else config_name, sets, fold_resume)

        return train_folds(
            task.name, out, folds, one_fold, overrides, resume, training.held_out, write=is_primary_process()
        )
    if plan is not None:
        return _train_members(task, data_root, Path(out), config_name, overrides, resume, plan)
    return _train_run(task, data_root, out, config_name, overrides, resume, stage)


def _members_plan(
    task: Task, out: Path, config_name: str | None, overrides: Sequence[str], resume: bool
) -> EnsembleTrainConfig | None:
    """The `train` section when it asks for an ensemble of seeds (a resumed one: as its first member says)."""
    first = member_dir(out, 0) / "config.yaml"
    if resume and not first.is_file():
        return None
    config = task.load_config(str(first) if resume else config_name, overrides)
    section = config.train
    return section if isinstance(section, EnsembleTrainConfig) and section.members is not None else None


def _train_members(
    task: Task,
    data_root: str | Path,
    out: Path,
    config_name: str | None,
    overrides: Sequence[str],
    resume: bool,
    plan: EnsembleTrainConfig,
) -> Metrics:
    """`train.members` runs with consecutive seeds, the best `keep_members` kept; then scored together."""
    training = task.training.get()
    objective = task.objective
    on = plan.keep_members_on or objective.key or objective.metric
    if on in (objective.key, objective.metric):
        on, minimise = objective.key or objective.metric, objective.direction == "minimize"
    else:
        minimise = on in training.lower_is_better or on.endswith("loss")
    known = sorted(training.held_out({}))
    if known and on not in known:
        raise RadlabConfigError(
            f"train.keep_members_on: {task.name} has no held-out score {on!r} (its scores: {', '.join(known)})"
        )
    base = str(member_dir(out, 0) / "config.yaml") if resume else config_name

    def one_member(target: Path, sets: list[str], member_resume: bool) -> Metrics:
        return _train_run(task, data_root, target, None if member_resume else base, sets, member_resume)

    assert plan.members is not None  # _members_plan
    manifest = train_members(
        task.name,
        out,
        plan.members,
        one_member,
        overrides,
        resume,
        training.held_out,
        Selection(on, minimise, plan.keep_members),
        plan.seed,
        write=is_primary_process(),
    )
    if not is_primary_process():
        return manifest
    return _scored(task, out, training.data_root(Path(data_root)), manifest)


def _scored(task: Task, folder: Path, root: Path, manifest: Metrics, held_out: Any = None) -> Metrics:
    """The manifest with the ensemble scored beside its members; a scoring that fails is a warning (the
    members are trained and usable), never the end of a training."""
    try:
        return score_ensemble(task, folder, root, held_out)
    except (RadlabError, OSError) as error:
        warn(f"{folder}: the ensemble was not scored ({error}); its members are trained and predict uses them")
        return manifest


def _train_run(
    task: Task,
    data_root: str | Path,
    out: str | Path,
    config_name: str | None,
    overrides: Sequence[str],
    resume: bool,
    stage: str | None = None,
) -> Metrics:
    """One run (every stage, or `stage`), scored as an ensemble afterwards when it kept epochs."""
    training = task.training.get()
    root = training.data_root(Path(data_root))
    with (
        open_run(out, task, config_name, overrides, resume, stage) as (run, config, checkpoint),
        deterministic_run(config.train.deterministic),
    ):
        import lightning as L

        from radlab.core.provenance.record import finish_record, start_record

        L.seed_everything(config.train.seed, workers=True, verbose=False)
        started = time.monotonic()
        if is_primary_process():
            run.record_data_root(root)
            start_record(run, config.model_dump(mode="json"), root, config.train.deterministic)
        with tracked_run(run, config) as tracker:
            metrics = training.fit(FitContext(root, run, config, checkpoint, resume, stage))
            if stage is not None and stage != task.stages[0] and is_primary_process():  # the stage succeeded
                for folder in (run.root, *kept_members(run.root)):  # kept epochs are runs of this config too
                    atomic_write_text(folder / "config.yaml", config_to_yaml(config))
            if is_primary_process():
                finish_record(run, started, tracker.describe() if tracker is not None else None)
            last_stage = stage is None or stage == task.stages[-1]
            if last_stage and is_primary_process() and _keeps_epochs(config) and is_ensemble(run.root):
                manifest = read_manifest(run.root)
                metrics = {**metrics, "ensemble": _scored(task, run.root, root, manifest, training.held_out)}
            if tracker is not None:
                tracker.final(metrics)
    return metrics


def _keeps_epochs(config: Any) -> bool:
    section = getattr(config, "train", None)
    return isinstance(section, EnsembleTrainConfig) and (
        section.snapshots is not None or section.snapshot_epochs is not None
    )


def fit_recipe(
    recipe: Recipe,
    run: RunDir,
    engine: EngineConfig,
    train_loader: DataLoader,
    valid_loader: DataLoader,
    checkpoint: Path | None = None,
    kept: KeptEpochs | None = None,
) -> L.Trainer:
    """One Lightning fit of `recipe` keeping `run` current (best model exported on the recipe's monitor,
    history.csv, resumable checkpoints), resumed from `checkpoint` when given. The epochs `engine` asks to
    keep (`train.snapshots`) go to `kept`, by default RUN/kept/ with RUN/ensemble.json."""
    import signal

    from radlab.core.engine.snapshots import KeptEpochs, SnapshotKeeper
    from radlab.core.engine.trainer import build_trainer

    if kept is None and isinstance(engine, EnsembleTrainConfig) and (engine.snapshots or engine.snapshot_epochs):
        task = str(getattr(recipe.config, "task", ""))
        kept = KeptEpochs(run.root, engine.snapshots, engine.snapshot_epochs, task=task)
    keepers = [SnapshotKeeper(kept, recipe.monitor, recipe.mode)] if kept is not None else []
    trainer = build_trainer(engine, run, monitor=recipe.monitor, mode=recipe.mode, callbacks=keepers)
    try:
        trainer.fit(
            recipe,
            train_dataloaders=train_loader,
            val_dataloaders=valid_loader,
            ckpt_path=str(checkpoint) if checkpoint else None,
        )
    except (Interrupted, SystemExit) as stop:  # Lightning turns Ctrl-C and its own SIGTERM stop into SystemExit
        if isinstance(stop, SystemExit) and not (trainer.interrupted or trainer.received_sigterm):
            raise
        signum = (
            stop.signum
            if isinstance(stop, Interrupted)
            else signal.SIGTERM
            if trainer.received_sigterm
            else signal.SIGINT
        )
        epoch = f"at epoch {trainer.current_epoch + 1} of {run.root}"
        raise Interrupted(signum, epoch, "continue with --resume (the last checkpoint is intact)") from None
    return trainer


def fit_stage(sub: RunDir, resume: bool, seed: int, fit: Callable[[Path | None], L.Trainer]) -> None:
    """A stage or unit trained as a run of its own in `sub`: skipped when a resumed run finished it (its
    done.json), otherwise `fit(checkpoint)` from its last checkpoint when resuming, freshly seeded."""
    done = sub.file("done.json")
    if resume and done.is_file():
        info(f"  {sub.root.name}: finished earlier, skipped")
        return
    sub.root.mkdir(parents=True, exist_ok=True)
    checkpoint = sub.last_checkpoint if resume and sub.last_checkpoint.is_file() else None
    import lightning as L

    L.seed_everything(seed, workers=True, verbose=False)
    trainer = fit(checkpoint)
    sub.write_json("done.json", {"epochs": trainer.current_epoch})
