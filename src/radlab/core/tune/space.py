"""The `tune:` section of a preset: which config keys to search, over what ranges, and how to prune."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from radlab.core.config import StrictModel


class ParamSpec(StrictModel):
    """One searched key: a float or int range (log-uniform with `log`), or a list of choices."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty `choices` list")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"a {self.type} parameter needs low < high")
        elif self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        return self

    def suggest(self, trial: Any, name: str) -> Any:
        """The value an Optuna trial draws for this key."""
        if self.type == "categorical":
            return trial.suggest_categorical(name, self.choices)
        low, high = self._range()
        if self.type == "int":
            return trial.suggest_int(name, int(low), int(high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, low, high, step=self.step, log=self.log)

    def corners(self) -> list[Any]:
        """The extreme values, to check before any training that the config accepts them."""
        return list(self.choices or ()) if self.type == "categorical" else list(self._range())

    def _range(self) -> tuple[float, float]:
        assert self.low is not None and self.high is not None  # checked by _complete
        return self.low, self.high


class TuneConfig(StrictModel):
    """Search space (dotted config keys) and the pruner; the objective is the task's validation metric."""

    space: dict[str, ParamSpec] = Field(default_factory=dict)
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    # Trials that run to the end before the median pruner stops any, and epochs no trial is pruned in.
    startup_trials: int = Field(3, ge=0)
    warmup_epochs: int = Field(1, ge=0)
