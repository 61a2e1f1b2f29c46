"""One run's facts as `radlab card` and `radlab compare` read them: its config, metrics (with intervals),
environment record and history, from a run directory, an ensemble folder (its first member's config and
environment, the manifest's scores) or a `radlab tune` folder (its best trial's run)."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radlab.core.config import flat_keys, read_yaml
from radlab.core.engine.run_dir import refuse_json_constant
from radlab.core.errors import RadlabDataError

INTERVAL_SUFFIXES = (("_lower", "_upper"), ("_low", "_high"), ("_ci_low", "_ci_high"))
"""How a metric's interval is named beside it (MURA's `kappa_lower` / `kappa_upper`)."""
BEST_TRIAL = re.compile(r"^# trial (\d+),", re.MULTILINE)


@dataclass(frozen=True)
class RunFacts:
    """A run's files, read: `config` and `metrics` as flat dotted keys, the environment record (None before
    provenance was recorded), history rows, and what kind of folder it is."""

    path: Path
    kind: str
    config: dict[str, Any]
    metrics: dict[str, float | None]
    environment: dict[str, Any] | None
    history: list[dict[str, str]]

    @property
    def task(self) -> str:
        return str(self.config.get("task", "?"))


def read_facts(path: str | Path) -> RunFacts:
    """The facts of the run at `path`; a folder that is no run is one line naming it."""
    path = Path(path)
    if (path / "best.yaml").is_file() and not (path / "config.yaml").is_file():
        found = BEST_TRIAL.search((path / "best.yaml").read_text(encoding="utf-8"))
        trial = path / f"trial-{int(found.group(1)):04d}" if found else None
        if trial is None or not (trial / "config.yaml").is_file():
            raise RadlabDataError(path / "best.yaml", "names no trial run beside it")
        best = read_facts(trial)
        return RunFacts(path, f"tune (best: {trial.name})", best.config, best.metrics, best.environment, best.history)
    manifest = _json(path / "ensemble.json") if (path / "ensemble.json").is_file() else None
    source = path
    if not (path / "config.yaml").is_file():
        members = manifest.get("members") if isinstance(manifest, dict) else None
        if not members:
            raise RadlabDataError(path, "not a radlab run directory, ensemble or tune folder (no config.yaml)")
        source = path / str(members[0])
    config = flat_keys(read_yaml(source / "config.yaml", "run config"))
    metrics = numbers(_json(path / "metrics.json")) if (path / "metrics.json").is_file() else {}
    if manifest is not None:
        metrics |= numbers(manifest, "ensemble.")
    environment = _json(source / "environment.json") if (source / "environment.json").is_file() else None
    kind = "ensemble" if source != path else "run" if manifest is None else "run keeping epochs"
    return RunFacts(path, kind, config, metrics, environment, _history(source / "history.csv"))


def numbers(data: Any, prefix: str = "") -> dict[str, float | None]:
    """The numbers (and nulls) of a JSON tree as flat dotted keys; lists and strings left out."""
    found: dict[str, float | None] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            found |= numbers(value, f"{prefix}{key}.") if isinstance(value, dict) else _one(f"{prefix}{key}", value)
    return found


def _one(key: str, value: Any) -> dict[str, float | None]:
    if value is None:
        return {key: None}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {key: float(value)} if math.isfinite(value) else {key: None}
    return {}


def with_intervals(metrics: dict[str, float | None]) -> dict[str, tuple[float | None, float | None, float | None]]:
    """metric: (value, lower, upper), the interval's own keys folded into their metric's row."""
    folded: dict[str, tuple[float | None, float | None, float | None]] = {}
    bounds = {key + low for key in metrics for low, _ in INTERVAL_SUFFIXES} | {
        key + high for key in metrics for _, high in INTERVAL_SUFFIXES
    }
    for key, value in metrics.items():
        if key in bounds:
            continue
        interval = next(((low, high) for low, high in INTERVAL_SUFFIXES if key + low in metrics), None)
        lower, upper = (metrics.get(key + interval[0]), metrics.get(key + interval[1])) if interval else (None, None)
        folded[key] = (value, lower, upper)
    return folded


def format_value(value: float | None, lower: float | None = None, upper: float | None = None) -> str:
    """`0.8123 [0.75, 0.87]`, `0.8123`, or `-` for a missing number."""
    if value is None:
        return "-"
    text = f"{value:.4g}"
    return f"{text} [{lower:.4g}, {upper:.4g}]" if lower is not None and upper is not None else text


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse_json_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise RadlabDataError(path, f"not valid JSON ({exc})") from None


def _history(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
