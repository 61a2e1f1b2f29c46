"""The run directory: what `train` writes and `predict` reads (shared/spec/cli.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radlab.core.errors import RadlabDataError, RadlabError
from radlab.core.io.atomic import atomic_write_text


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
        atomic_write_text(self.file(name), json.dumps(data, indent=2, allow_nan=True) + "\n")

    def read_json(self, name: str) -> Any:
        path = self.file(name)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RadlabDataError(path, "missing from the run directory") from None
        except json.JSONDecodeError as exc:
            raise RadlabDataError(path, f"not valid JSON ({exc})") from None
