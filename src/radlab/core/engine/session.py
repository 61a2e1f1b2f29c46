"""Starting or resuming a training run: which config applies, and the run directory made ready."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from radlab.core.config import config_to_yaml, deep_merge, parse_overrides, read_yaml, validate_config
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabConfigError
from radlab.core.io.atomic import atomic_write_text

T = TypeVar("T", bound=BaseModel)


RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "GROUP_RANK")


def is_primary_process() -> bool:
    """False in the other processes of a distributed run (any rank variable set and non-zero)."""
    import os

    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


def open_run(
    out: str | Path,
    schema: type[T],
    load_preset: Callable[[str | None, Sequence[str]], T],
    config_name: str | None,
    overrides: Sequence[str],
    resume: bool,
) -> tuple[RunDir, T, Path | None]:
    """(run, config, checkpoint to resume from or None).

    A new run takes a preset or YAML file plus overrides, and the folder is only created once the config is
    known to be good (check the data before calling). A resumed run takes its own saved config plus overrides
    (--config cannot change it). The resolved config is written to RUN/config.yaml either way.
    """
    run = RunDir(Path(out))
    if not is_primary_process():
        # A DDP worker started by Lightning or torchrun: rank 0 owns the run directory.
        config = (
            validate_config(schema, deep_merge(read_yaml(run.config, "run config"), parse_overrides(overrides)))
            if resume
            else load_preset(config_name, overrides)
        )
        checkpoint = run.last_checkpoint if resume and run.last_checkpoint.is_file() else None
        return run, config, checkpoint
    if resume:
        checkpoint = run.start(resume=True)
        if config_name is not None:
            raise RadlabConfigError("--config cannot change a run being resumed; use --set key=value")
        saved = read_yaml(run.config, "run config")
        config = validate_config(schema, deep_merge(saved, parse_overrides(overrides)), source=str(run.config))
    else:
        config = load_preset(config_name, overrides)
        checkpoint = run.start(resume=False)
    atomic_write_text(run.config, config_to_yaml(config))
    return run, config, checkpoint
