"""Experiment tracking through Lightning's loggers (`train --logger csv|tensorboard|mlflow`, the `tracking`
config section): the run's hyper-parameters, every epoch's history row and, when the training ends, its
final metrics. The default (`none`) leaves the run directory's own files as the only record.

One radlab training is one tracked run: CSV and TensorBoard write RUN/logs/<logger>/<part>/ (`run` for the
run itself, the sub-run's path for a stage or unit: `slice`, `units/acl-axial`); MLflow logs every part into
one MLflow run, a part's metrics prefixed with its path. Epoch rows are logged with the epoch as the step.
Rank 0 alone logs."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radlab.core.config import flat_keys
from radlab.core.console import warn
from radlab.core.engine.run_dir import RunDir
from radlab.core.engine.session import is_primary_process
from radlab.core.errors import RadlabError

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger

    from radlab.core.engine.config import TrackingConfig

NEEDS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}
"""The package each logger imports (csv needs none beyond Lightning)."""
RUN_PART = "run"


def require_logger(kind: str) -> None:
    """One line when the logger's package is not installed."""
    module = NEEDS.get(kind)
    if module is None:
        return
    try:
        __import__(module)
    except ImportError:
        raise RadlabError(f"--logger {kind} needs the {module} package: pip install radlab[tracking]") from None


def mlflow_uri(section: TrackingConfig) -> str:
    """The tracking URI: the configured one, else $MLFLOW_TRACKING_URI, else ./mlflow.db (sqlite, MLflow's own
    default store since its file store went into maintenance)."""
    configured = section.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return configured or f"sqlite:///{Path('mlflow.db').absolute()}"


def scalars(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested) mapping as flat "a/b" keys; booleans, strings, lists and NaN left out."""
    found: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found |= scalars(value, f"{name}/")
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            found[name] = float(value)
    return found


@dataclass
class Tracker:
    """The loggers of one training: made per part as its Trainer is built (`logger_for`)."""

    section: TrackingConfig
    root: Path
    hyperparameters: dict[str, Any]
    loggers: dict[str, Logger] = field(default_factory=dict)
    mlflow_run: str | None = None
    failed: bool = False

    def logger_for(self, run: RunDir) -> Logger:
        """The logger of one part of the run (made on first use): the run itself, a stage or unit below it, or
        a training elsewhere that it runs (named by its folder)."""
        folder = run.root.absolute()
        part = folder.relative_to(self.root).as_posix() if folder.is_relative_to(self.root) else folder.name
        part = RUN_PART if part in (".", "") else part
        if part not in self.loggers:
            self.loggers[part] = self._make(part)
        return self.loggers[part]

    def _make(self, part: str) -> Logger:
        kind = self.section.logger
        if kind == "mlflow":
            from lightning.pytorch.loggers import MLFlowLogger

            uri = mlflow_uri(self.section)
            try:
                mlflow = MLFlowLogger(
                    experiment_name=self.section.experiment,
                    run_name=self.section.run_name or self.root.name,
                    tracking_uri=uri,
                    tags={"radlab.run_dir": str(self.root)},
                    prefix="" if part == RUN_PART else part.replace("/", "."),
                    run_id=self.mlflow_run,
                )
                first = self.mlflow_run is None
                self.mlflow_run = mlflow.run_id
                if first:
                    mlflow.log_hyperparams(self.hyperparameters)
            except Exception as error:  # MLflow's own (connection, store) errors have no common base
                raise RadlabError(f"MLflow at {uri}: {_first_line(error)}") from None
            return mlflow
        if kind == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            logger: Logger = TensorBoardLogger(
                self.root / "logs", name="tensorboard", version=part, default_hp_metric=False
            )
        else:
            from lightning.pytorch.loggers import CSVLogger

            logger = CSVLogger(self.root / "logs", name="csv", version=part)
        logger.log_hyperparams(self.hyperparameters)
        return logger

    def epoch(self, run: RunDir, row: Mapping[str, Any]) -> None:
        """One history row (its epoch the step)."""
        self._log(run, scalars({k: v for k, v in row.items() if k != "epoch"}), int(row["epoch"]))

    def final(self, metrics: Mapping[str, Any]) -> None:
        """The training's metrics, as `final/...` of the run itself."""
        self._log(RunDir(self.root), scalars(metrics, "final/"), 0)

    def _log(self, run: RunDir, metrics: dict[str, float], step: int) -> None:
        """A tracking server that stops answering is a warning (once), never the end of a training."""
        try:
            logger = self.logger_for(run)
            logger.log_metrics(metrics, step=step)
            logger.save()
        except Exception as error:  # whatever the logger's backend raises
            if not self.failed:
                warn(f"{self.section.logger} logging failed, the training goes on: {_first_line(error)}")
            self.failed = True

    def describe(self) -> dict[str, Any]:
        """Where this training is tracked (environment.json keeps it)."""
        kind = self.section.logger
        if kind == "mlflow":
            where = {"uri": mlflow_uri(self.section), "experiment": self.section.experiment, "run_id": self.mlflow_run}
            return {"logger": kind, **where}
        return {"logger": kind, "folder": f"logs/{kind}"}

    def close(self, status: str) -> None:
        for logger in self.loggers.values():
            logger.finalize(status)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


_TRACKER: ContextVar[Tracker | None] = ContextVar("radlab_tracker", default=None)


def current_tracker() -> Tracker | None:
    """The tracker of the training this process runs (None: not tracked, or not rank 0)."""
    return _TRACKER.get()


@contextmanager
def tracked_run(run: RunDir, config: Any) -> Iterator[Tracker | None]:
    """Track the training inside (its config's `tracking` section); a run that raises is closed as failed."""
    section = getattr(config, "tracking", None)
    if section is None or section.logger == "none" or not is_primary_process():
        yield None
        return
    require_logger(section.logger)
    hyperparameters = {k: v if isinstance(v, int | float | str | bool) or v is None else str(v)
                       for k, v in flat_keys(config.model_dump(mode="json")).items()}  # fmt: skip
    tracker = Tracker(section, run.root.absolute(), hyperparameters)
    token = _TRACKER.set(tracker)
    status = "failed"
    try:
        yield tracker
        status = "success"
    finally:
        _TRACKER.reset(token)
        tracker.close(status)
