"""Starting or resuming a training run: which config applies, and the run directory made ready."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radlab.core.config import config_to_yaml, deep_merge, parse_overrides, read_yaml, validate_config
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabConfigError, RadlabError
from radlab.core.io.atomic import atomic_write_text

if TYPE_CHECKING:
    from radlab.core.task import Task


RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "GROUP_RANK")


def is_primary_process() -> bool:
    """False in the other processes of a distributed run (any rank variable set and non-zero)."""
    import os

    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


def open_run(
    out: str | Path,
    task: Task,
    config_name: str | None,
    overrides: Sequence[str],
    resume: bool,
    existing: bool = False,
) -> tuple[RunDir, Any, Path | None]:
    """(run, config, checkpoint to resume from or None).

    A new run takes a preset or YAML file plus overrides, and the folder is only created once the config is
    known to be good (check the data before calling). A resumed run, or an `existing` one that a later stage
    continues, takes its own saved config plus overrides (--config cannot change it). The resolved config is
    written to RUN/config.yaml either way.
    """
    run = RunDir(Path(out))
    saved = resume or existing
    if not is_primary_process():
        # A DDP worker started by Lightning or torchrun: rank 0 owns the run directory.
        config = _saved_config(run, task, overrides) if saved else task.load_config(config_name, overrides)
        checkpoint = run.last_checkpoint if resume and run.last_checkpoint.is_file() else None
        return run, config, checkpoint
    if saved and config_name is not None:
        raise RadlabConfigError("--config cannot change an existing run; use --set key=value")
    if existing and not run.config.is_file():
        raise RadlabError(f"{run.root} holds no {task.name} run; train every stage first")
    if resume:
        checkpoint = run.start(resume=True)
        config = _saved_config(run, task, overrides)
    elif existing:
        checkpoint, config = None, _saved_config(run, task, overrides)
    else:
        config = task.load_config(config_name, overrides)
        checkpoint = run.start(resume=False)
    atomic_write_text(run.config, config_to_yaml(config))
    return run, config, checkpoint


def _saved_config(run: RunDir, task: Task, overrides: Sequence[str]) -> Any:
    saved = read_yaml(run.config, "run config")
    return validate_config(task.config, deep_merge(saved, parse_overrides(overrides)), source=str(run.config))
