"""The models a service holds: each `--model` checked at once (a usage error before anything listens), then
loaded through its Task's one `load` door, member by member for an ensemble, with what `/models` shows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radlab.core.errors import RadlabConfigError, RadlabDataError
from radlab.core.serve.spec import ServedRun, ServeSpec
from radlab.core.task import Task, task_of_run


@dataclass(frozen=True)
class ModelPlan:
    """A `--model` before loading: its name (the run folder's name), task and member runs."""

    name: str
    task: Task
    folder: Path
    members: tuple[Path, ...]


@dataclass
class ServedModel:
    """A loaded model and the facts `/models` lists about it."""

    plan: ModelPlan
    spec: ServeSpec
    run: ServedRun
    preset: str
    metrics: dict[str, Any]
    weights: dict[str, str] = field(default_factory=dict)

    @property
    def weights_sha256(self) -> str:
        """The sha256 of the weights file, or (several files: an ICH run, an ensemble) of the sorted
        `sha256  path` lines of all of them, as `sha256sum` prints them."""
        if len(self.weights) == 1:
            return next(iter(self.weights.values()))
        lines = "".join(f"{digest}  {path}\n" for path, digest in sorted(self.weights.items()))
        return hashlib.sha256(lines.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.plan.name,
            "task": self.plan.task.name,
            "preset": self.preset,
            "engine": self.run.engine,
            "metrics": self.metrics,
            "weights_sha256": self.weights_sha256,
            "weights": self.weights,
        }


def plan_models(folders: Sequence[Path], engine: str) -> list[ModelPlan]:
    """Every `--model` resolved to its task and member runs, refused with one line when it is no trained
    run, its task cannot be served, or two share a name."""
    from radlab.core.engine.ensemble import ensemble_members
    from radlab.core.infer.engines import ENGINES  # every engine predict has

    if engine not in ENGINES:
        raise RadlabConfigError(f"--engine {engine!r}: choose from {', '.join(ENGINES)}")
    if not folders:
        raise RadlabConfigError("give at least one --model RUN")
    plans: dict[str, ModelPlan] = {}
    for folder in folders:
        if not folder.is_dir():
            raise RadlabDataError(folder, "not a folder (give a trained run directory)")
        members = tuple(ensemble_members(folder))
        task = task_of_run(members[0])
        for member in members[1:]:
            if task_of_run(member) is not task:
                raise RadlabDataError(member, f"is not a {task.name} run like {members[0]}")
        if task.serve is None:
            raise RadlabConfigError(f"the {task.name} task cannot be served (it declares no serve spec)")
        name = folder.absolute().name  # a symlink's own name: `ln -s radlab-demo/mura/run mura` serves "mura"
        if name in plans:
            raise RadlabConfigError(
                f"two models are named {name!r} ({plans[name].folder}, {folder}): a model is named by its folder; "
                "serve a symlink of another name to one of them"
            )
        plans[name] = ModelPlan(name, task, folder, members)
    return list(plans.values())


def load_model(plan: ModelPlan, engine: str, device: str) -> ServedModel:
    """A planned model loaded for `engine` on `device`: each member through `Task.load`."""
    if plan.task.serve is None:  # plan_models refuses such a task; a Task built by hand may still lack it
        raise RadlabConfigError(f"the {plan.task.name} task cannot be served (it declares no serve spec)")
    loaded = tuple(plan.task.load.get()(member, engine) for member in plan.members)
    run = ServedRun(plan.name, plan.members, loaded, engine, device)
    return ServedModel(
        plan,
        plan.task.serve.get(),
        run,
        _preset_of(plan),
        _metrics_of(plan.folder, plan.members),
        _weights_of(plan.folder, plan.members),
    )


def _preset_of(plan: ModelPlan) -> str:
    """The preset the run was trained with: the one whose config equals the run's, else "custom"."""
    from radlab.core.config import preset_names

    config = plan.task.run_config(plan.members[0]).model_dump()
    for name in preset_names(plan.task.presets):
        try:
            if plan.task.load_config(name).model_dump() == config:
                return name
        except Exception:  # a preset that no longer validates is simply not this run's
            continue
    return "custom"


def _metrics_of(folder: Path, members: Sequence[Path]) -> dict[str, Any]:
    """The run's metrics.json (an ensemble: its manifest's held-out summary)."""
    for path, key in ((folder / "metrics.json", None), (folder / "ensemble.json", "summary")):
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                return {}
            value = data.get(key, {}) if key else data
            return value if isinstance(value, dict) else {}
    return {}


def _weights_of(folder: Path, members: Sequence[Path]) -> dict[str, str]:
    """sha256 of every weights file the members predict with, by path relative to the model's folder."""
    digests = {}
    for member in members:
        for path in sorted(member.rglob("*.safetensors")):
            if "kept" in path.relative_to(member).parts:
                continue
            digests[str(path.relative_to(folder))] = _sha256(path)
    return digests


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
