"""Starting or resuming a training run: which config applies, and the run directory made ready."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radlab.core.config import config_to_yaml, deep_merge, flat_keys, parse_overrides, read_yaml, validate_config
from radlab.core.engine.config import BackboneConfig, EngineConfig
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabConfigError, RadlabError
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.locks import locked

if TYPE_CHECKING:
    from radlab.core.task import Task


RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "GROUP_RANK")


def is_primary_process() -> bool:
    """False in the other processes of a distributed run (any rank variable set and non-zero)."""
    import os

    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


ENGINE_RESUMABLE = frozenset(
    {"max_epochs", "progress", "devices", "accelerator", "strategy", "num_nodes"}
    | {"limit_train_batches", "limit_val_batches"}
    | {"keep_members", "keep_members_on"}
)
"""The keys of an engine section that a resumed run may change: how long, where and how verbosely it runs,
and which of a seed ensemble's members are kept (chosen again from their recorded scores).
(Not `early_stopping_patience`: Lightning restores the patience with the callback's state.)"""
DATA_RESUMABLE = frozenset({"num_workers", "cache_dir"})
MODEL_RESUMABLE = frozenset({"pretrained", "weights_file", "trust_pickle"})
"""The starting weights of a backbone: the checkpoint replaces them, so a resumed run may say where they are
now (or that it has none, offline)."""


@contextlib.contextmanager
def open_run(
    out: str | Path,
    task: Task,
    config_name: str | None,
    overrides: Sequence[str],
    resume: bool,
    stage: str | None = None,
) -> Iterator[tuple[RunDir, Any, Path | None]]:
    """(run, config, checkpoint to resume from or None), the run directory locked while inside: a second
    training (or `--resume`) of the same run is refused while this one runs.

    A new run takes a preset or YAML file plus overrides, and the folder is only created once the config is
    known to be good (check the data before calling); its config.yaml is written at once. A resumed run, or
    an existing one whose later `stage` is trained again, takes its own saved config plus overrides (--config
    cannot change it), and an override it could not honour is refused (see `_refuse_changes`); a later
    stage's config.yaml is written by the driver once the stage has succeeded.
    """
    run = RunDir(Path(out))
    later = stage is not None and stage != task.stages[0]
    saved = resume or later
    if not is_primary_process():
        # A DDP worker started by Lightning or torchrun: rank 0 owns (and locks) the run directory.
        config = _saved_config(run, task, overrides) if saved else task.load_config(config_name, overrides)
        yield run, config, run.last_checkpoint if resume and run.last_checkpoint.is_file() else None
        return
    if saved and config_name is not None:
        raise RadlabConfigError("--config cannot change an existing run; use --set key=value")
    if later and not run.config.is_file():
        raise RadlabError(f"{run.root} holds no {task.name} run; train every stage first")
    config = task.load_config(config_name, overrides) if not saved else None
    if saved and not run.config.is_file():
        run.start(resume=True)  # the one-line "nothing to resume"
    busy = f"{run.root} is being trained by another process; wait for it, or train into another --out"
    with locked(run.root, wait=False, busy=busy):
        if saved:
            checkpoint = run.start(resume=True) if resume else None
            config = _saved_config(run, task, overrides)
            _refuse_changes(task, _saved_config(run, task, ()), config, None if resume else stage)
        else:
            checkpoint = run.start(resume=False)
        if not later:
            atomic_write_text(run.config, config_to_yaml(config))
        yield run, config, checkpoint


def _refuse_changes(task: Task, before: Any, after: Any, stage: str | None) -> None:
    """A resumed run continues from its checkpoint: the optimiser, the schedule, the kept-model state and the
    data it was split on come from there, so `--set` may change only how long, where and how it runs (and is
    tracked). A later `stage` trained again may also change the sections of that stage (the only one that
    runs)."""
    sections = set(task.stage_sections.get(stage, ())) if stage else set()
    old, new = flat_keys(before.model_dump(mode="json")), flat_keys(after.model_dump(mode="json"))
    for key in sorted(k for k in new if old.get(k) != new[k]):
        section, _, name = key.partition(".")
        part = getattr(after, section, None)
        engine = isinstance(part, EngineConfig) and name in ENGINE_RESUMABLE
        weights = isinstance(part, BackboneConfig) and name in MODEL_RESUMABLE
        data = section == "data" and name in DATA_RESUMABLE
        harmless = engine or weights or data or section in ("predict", "tune", "tracking")
        if not (harmless or section in sections):
            what = f"--stage {stage} retrains {', '.join(sorted(sections))} only" if stage else "a resumed run"
            raise RadlabConfigError(
                f"--set {key}: {what} continues from what was trained with {old.get(key)!r} (its checkpoint, "
                "optimiser and data split); start a new run to change it"
            )


def _saved_config(run: RunDir, task: Task, overrides: Sequence[str]) -> Any:
    saved = read_yaml(run.config, "run config")
    return validate_config(task.config, deep_merge(saved, parse_overrides(overrides)), source=str(run.config))
