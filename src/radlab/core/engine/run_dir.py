"""The run directory: what `train` writes and `predict` reads (shared/spec/cli.md)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from radlab.core.config import describe_validation_error
from radlab.core.errors import RadlabDataError, RadlabError
from radlab.core.io.atomic import atomic_write_text


def finite(data: Any) -> Any:
    """`data` with every NaN or infinite float replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite(value) for value in data]
    return data


def refuse_json_constant(name: str) -> Any:
    """json.loads' parse_constant: NaN, Infinity and -Infinity are refused (a run file holds finite numbers)."""
    raise ValueError(f"{name} is not a number a run file may hold")


class MetricsFile(BaseModel):
    """What every RUN/metrics.json holds: an object whose `epoch`, when present, is the kept epoch; the
    task's own scores beside it."""

    model_config = ConfigDict(extra="allow")
    epoch: int | None = None


@dataclass(frozen=True)
class RunDir:
    """Paths inside one training run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def weights(self) -> Path:
        return self.root / "model.safetensors"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.safetensors"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.safetensors"

    def file(self, name: str) -> Path:
        """Any other file of the run (task-specific extras such as data statistics)."""
        return self.root / name

    def start(self, resume: bool) -> Path | None:
        """Create the folder for a new run, or find the checkpoint to resume from.

        A folder that already holds a run is refused unless resuming, so a typo never overwrites work.
        """
        if resume:
            if not self.config.is_file():
                raise RadlabError(f"{self.root}: nothing to resume (no config.yaml); start without --resume")
            return self.last_checkpoint if self.last_checkpoint.is_file() else None
        if self.config.exists() or self.checkpoints.exists():
            raise RadlabError(
                f"{self.root} already holds a training run; pass --resume to continue it or choose another --out"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        return None

    def require_model(self) -> None:
        """Fail with one line unless the folder holds a trained model."""
        for path in (self.config, self.weights):
            if not path.is_file():
                raise RadlabDataError(path, "missing: not a finished radlab run directory (train first)")

    def record_data_root(self, root: Path, name: str = "data.json") -> None:
        """Remember the training data's folder, for later commands that need training images (export)."""
        self.write_json(name, {"data_root": str(Path(root).resolve())})

    def data_root(self, given: str | Path | None, name: str = "data.json") -> Path:
        """`given`, or the training data's folder the run recorded; one line when neither is there."""
        if given is not None:
            return Path(given)
        recorded = self.read_json(name).get("data_root") if self.file(name).is_file() else None
        if not recorded:
            raise RadlabDataError(self.root, "does not record its training data; pass --data-root")
        return Path(recorded)

    def write_json(self, name: str, data: Any) -> None:
        """`data` as JSON, atomically; a NaN or infinite number is written as null (JSON has none)."""
        atomic_write_text(self.file(name), json.dumps(finite(data), indent=2, allow_nan=False) + "\n")

    def read_json(self, name: str, schema: type[BaseModel] | None = None) -> Any:
        """A run file's JSON (NaN and infinities refused), checked against `schema` when given: a damaged or
        hand-edited file is one line naming it, never a traceback or a NaN in an output."""
        path = self.file(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse_json_constant)
        except FileNotFoundError:
            raise RadlabDataError(path, "missing from the run directory") from None
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise RadlabDataError(path, f"not valid JSON ({exc})") from None
        if schema is not None:
            try:
                schema.model_validate(data)
            except ValidationError as exc:
                raise RadlabDataError(path, describe_validation_error(exc)) from None
        return data
