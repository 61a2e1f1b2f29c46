"""`radlab tune`: one Optuna study, any number of worker processes on any number of machines sharing it
through its storage (a sqlite file by default, PostgreSQL for many machines).

Each trial is an ordinary training run in OUT/trial-NNNN/ (its number is unique across workers), trained with
the preset plus `--set` overrides plus the trial's draws. Workers record a heartbeat; a trial whose worker
died is marked failed after the grace period and retried once with the same parameters by the next worker,
so no trial is silently lost. Every worker ends by writing OUT/best.yaml (a preset file for `train --config`)
and OUT/trials.csv from the shared study.
"""

from __future__ import annotations

import math
import os
import random
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from radlab.core.config import config_to_yaml
from radlab.core.console import info
from radlab.core.engine.trainer import extra_callbacks
from radlab.core.errors import RadlabConfigError, RadlabError
from radlab.core.io.atomic import atomic_write_text
from radlab.core.tune.pruning import PruningCallback
from radlab.core.tune.space import TuneConfig

if TYPE_CHECKING:
    from radlab.core.task import Objective, Task

ONE_DEVICE = "train.devices=1"
ONE_MODEL = ("train.members=null", "train.snapshots=null", "train.snapshot_epochs=null")
"""A trial is one model: a preset's ensemble (MURA's 5 of 10 seeds, pneumonia's kept epochs) is what the
best parameters are then trained into, not what each trial trains (`--set` may still ask for one)."""


def _one_model(task: Task, config_name: str | None) -> list[str]:
    from radlab.core.engine.config import EnsembleTrainConfig

    return list(ONE_MODEL) if isinstance(task.load_config(config_name).train, EnsembleTrainConfig) else []


HEARTBEAT_S = 30
GRACE_S = 120


def storage_url(storage: str | None, out: Path) -> str:
    """The SQLAlchemy URL: OUT/study.db by default; `postgresql://` uses psycopg 3 when psycopg2 is absent."""
    if storage is None:
        return f"sqlite:///{(out / 'study.db').resolve()}"
    if storage.startswith(("postgresql://", "postgres://")):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + storage.split("://", 1)[1]
    return storage


def run_tuning(
    task: Task,
    data_root: Path,
    out: Path,
    trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    config_name: str | None = None,
    overrides: Sequence[str] = (),
    timeout_s: float | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Run `trials` trials in this process (others may run beside it), then write OUT/best.yaml and
    OUT/trials.csv; returns a summary of the study as it stands."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # One process per trial: parallelism comes from more workers (devices "auto" would start DDP on every GPU).
    trial_overrides = [ONE_DEVICE, *_one_model(task, config_name), *overrides]
    base = task.load_config(config_name, trial_overrides)
    engine = base.train
    if str(engine.devices) not in ("1", "[0]") or engine.num_nodes != 1 or "ddp" in str(engine.strategy):
        raise RadlabConfigError(
            "radlab tune trains each trial in one process on one device; start more workers instead "
            "(CUDA_VISIBLE_DEVICES=<i> per worker on a multi-GPU machine)"
        )
    tune: TuneConfig = base.tune
    if not tune.space:
        raise RadlabConfigError("this config declares no tune.space; add one to the preset (see the paper preset)")
    for key, param in tune.space.items():  # an unknown key or an out-of-range value fails now, not in trial 7
        for value in param.corners():
            task.load_config(config_name, [*trial_overrides, f"{key}={value}"])
    out.mkdir(parents=True, exist_ok=True)
    name = study_name or f"radlab-{task.name}"
    study = _open_study(storage_url(storage, out), name, task.objective.direction, tune, seed)
    _check_same_base(study, task.name, config_name, overrides)
    from radlab.core.engine.driver import train

    held_out = task.training.get().held_out
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: optuna.Trial) -> float:
        params = {key: param.suggest(trial, key) for key, param in tune.space.items()}
        run_dir = out / f"trial-{trial.number:04d}"
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        info(f"trial {trial.number}: " + ", ".join(f"{k}={_short(v)}" for k, v in params.items()))
        pruner = PruningCallback(trial, task.objective.epoch_metric)
        sets = [*trial_overrides, *(f"{key}={value}" for key, value in params.items())]
        with extra_callbacks(pruner):
            metrics = train(task, data_root, run_dir, config_name, sets, False)
        if pruner.pruned:
            raise optuna.TrialPruned(f"pruned after {pruner.step} validation epochs")
        value = task.objective.value(held_out(metrics))
        return float("nan") if value is None else float(value)

    study.optimize(objective, n_trials=trials, timeout=timeout_s, callbacks=[_announce(task.objective)])
    return write_results(study, task, out, config_name, overrides)


def _open_study(
    url: str, name: str, direction: Literal["maximize", "minimize"], tune: TuneConfig, seed: int | None
) -> Any:
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    sampler = optuna.samplers.RandomSampler(seed) if tune.sampler == "random" else optuna.samplers.TPESampler(seed=seed)
    pruners = {
        "median": optuna.pruners.MedianPruner(n_startup_trials=tune.startup_trials, n_warmup_steps=tune.warmup_epochs),
        "hyperband": optuna.pruners.HyperbandPruner(min_resource=max(1, tune.warmup_epochs)),
        "none": optuna.pruners.NopPruner(),
    }
    try:
        storage = _storage(url)
        return optuna.create_study(
            storage=storage,
            study_name=name,
            direction=direction,
            sampler=sampler,
            pruner=pruners[tune.pruner],
            load_if_exists=True,
        )
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RadlabError(f"cannot open the study storage {_redacted(url)}: {first_line}") from None


def _storage(url: str, attempts: int = 5) -> Any:
    """Optuna's RDB storage with heartbeats. Workers started together on an empty database race to create
    its tables; the loser sees a duplicate-table or duplicate-type error and tries again, after a jittered pause."""
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna's words; this is our use
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def _check_same_base(study: Any, task: str, config_name: str | None, overrides: Sequence[str]) -> None:
    """Every worker of a study must train the same task from the same preset and overrides."""
    base = {"task": task, "config": config_name, "overrides": list(overrides)}
    known = study.user_attrs.get("base")
    if known is None:
        study.set_user_attr("base", base)
    elif known != base:
        raise RadlabConfigError(
            f"study {study.study_name!r} was started with {known}; this worker has {base} (use another --study-name)"
        )


def _announce(objective: Objective) -> Callable[[Any, Any], None]:
    def announce(study: Any, trial: Any) -> None:
        state = trial.state.name.lower()
        value = "" if trial.value is None else f" {objective.metric} {trial.value:.4f}"
        try:
            best = f"; best so far: trial {study.best_trial.number} ({study.best_value:.4f})"
        except ValueError:
            best = ""
        info(f"trial {trial.number} {state}{value}{best}")

    return announce


def write_results(
    study: Any, task: Task, out: Path, config_name: str | None, overrides: Sequence[str]
) -> dict[str, Any]:
    """OUT/trials.csv (every trial of the study) and OUT/best.yaml (the best trial's full config)."""
    import optuna

    frame = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs", "duration"))
    atomic_write_text(out / "trials.csv", frame.to_csv(index=False))
    states = [t.state for t in study.get_trials(deepcopy=False)]
    summary: dict[str, Any] = {
        "study": study.study_name,
        "trials": len(states),
        "complete": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
        "failed": states.count(optuna.trial.TrialState.FAIL),
        "running": states.count(optuna.trial.TrialState.RUNNING),
    }
    completed = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    if not any(t.value is not None and math.isfinite(t.value) for t in completed):
        return summary
    best = study.best_trial
    config = task.load_config(config_name, [*overrides, *(f"{k}={v}" for k, v in best.params.items())])
    header = (
        f"# radlab tune: the best of {summary['complete']} complete trials of study {study.study_name!r}\n"
        f"# trial {best.number}, {task.objective.metric} {best.value:.6g}; train with --config best.yaml\n"
    )
    atomic_write_text(out / "best.yaml", header + config_to_yaml(config))
    summary.update(best_trial=best.number, best_value=best.value, best_params=best.params)
    return summary


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
