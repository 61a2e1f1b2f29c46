"""K-fold training as one command: a run directory per fold plus ENSEMBLE.json naming them, which every
`predict --model` accepts and averages."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from radlab.core.config import describe_validation_error
from radlab.core.console import info
from radlab.core.engine.run_dir import finite, refuse_json_constant
from radlab.core.errors import RadlabDataError, RadlabError
from radlab.core.io.atomic import atomic_write_text

ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_KIND = "radlab-ensemble"

TrainOne = Callable[[Path, list[str], bool], dict[str, Any]]
"""(fold run directory, overrides, resume) -> that fold's metrics."""


def fold_dir(out: Path, fold: int) -> Path:
    return out / f"fold{fold}"


def train_folds(
    task: str,
    out: str | Path,
    folds: int,
    train_one: TrainOne,
    overrides: Sequence[str],
    resume: bool,
    score: Callable[[dict[str, Any]], dict[str, float | None]],
    section: str = "train",
    write: bool = True,
) -> dict[str, Any]:
    """Train folds 0..k-1 of a k-fold split (`{section}.folds=k`, `{section}.fold=i`) into out/fold<i>/, then
    write out/ensemble.json. With `resume`, folds already started continue and the others start. `write` is
    False in the other processes of a distributed run: they train, rank 0 keeps the folder."""
    if folds < 2:
        raise RadlabError(f"--folds needs at least 2 folds, got {folds}")
    out = Path(out)
    manifest = out / ENSEMBLE_FILE
    if write and out.exists() and any(out.iterdir()) and not resume:
        raise RadlabError(f"{out} is not empty; pick a new --out, or --resume to continue its folds")
    if resume and manifest.is_file() and read_manifest(out)["folds"] != folds:
        raise RadlabError(f"{out} holds a {read_manifest(out)['folds']}-fold ensemble; --folds must match")
    out.mkdir(parents=True, exist_ok=True)
    scores: list[dict[str, float | None]] = []
    for fold in range(folds):
        info(f"fold {fold + 1}/{folds}")
        target = fold_dir(out, fold)
        fold_sets = [*overrides, f"{section}.folds={folds}", f"{section}.fold={fold}"]
        metrics = train_one(target, fold_sets, resume and (target / "config.yaml").is_file())
        scores.append(score(metrics) if write else {})
    if not write:
        return {}
    write_manifest(out, task, folds, scores)
    return read_manifest(out)


def write_manifest(out: Path, task: str, folds: int, scores: list[dict[str, float | None]]) -> None:
    """ensemble.json: the task, the member folders (relative) and each member's held-out scores."""
    names = sorted({name for s in scores for name in s})
    summary = {}
    for name in names:
        values = [value for s in scores if (value := s.get(name)) is not None and math.isfinite(value)]
        if values:
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[name] = {"mean": statistics.fmean(values), "sd": sd}
    document = {
        "kind": ENSEMBLE_KIND,
        "task": task,
        "folds": folds,
        "members": [fold_dir(Path("."), k).as_posix() for k in range(folds)],
        "held_out": scores,
        "summary": summary,
    }
    atomic_write_text(out / ENSEMBLE_FILE, json.dumps(finite(document), indent=2, allow_nan=False) + "\n")


class _Scores(BaseModel):
    """The numbers of ensemble.json: held-out scores per member and their summary, finite or null."""

    held_out: list[dict[str, float | None]] = Field(default_factory=list)
    summary: dict[str, dict[str, float]] = Field(default_factory=dict)
    model_config = ConfigDict(allow_inf_nan=False)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / ENSEMBLE_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse_json_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RadlabDataError(path, f"unreadable ensemble manifest ({exc})") from None
    if not isinstance(document, dict) or document.get("kind") != ENSEMBLE_KIND:
        raise RadlabDataError(path, f"not a radlab ensemble manifest (kind must be {ENSEMBLE_KIND!r})")
    members = document.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise RadlabDataError(path, "names no members")
    try:
        _Scores.model_validate({key: document[key] for key in ("held_out", "summary") if key in document})
    except ValidationError as exc:
        raise RadlabDataError(path, describe_validation_error(exc)) from None
    return document


def is_ensemble(folder: str | Path) -> bool:
    return (Path(folder) / ENSEMBLE_FILE).is_file()


def ensemble_members(folder: str | Path) -> list[Path]:
    """The run directories behind `--model folder`: its members for an ensemble, else [folder] itself.

    Members must lie inside the ensemble folder (a manifest cannot send predict elsewhere)."""
    folder = Path(folder)
    if not is_ensemble(folder):
        return [folder]
    root = folder.resolve()
    members = []
    for name in read_manifest(folder)["members"]:
        member = (folder / name).resolve()
        if not member.is_relative_to(root) or member == root:
            raise RadlabDataError(folder / ENSEMBLE_FILE, f"member {name!r} lies outside the ensemble folder")
        if not (member / "config.yaml").is_file():
            raise RadlabDataError(member / "config.yaml", "missing: the ensemble's fold was not trained")
        members.append(folder / name)
    return members


def expand_members(folders: Sequence[str | Path]) -> list[Path]:
    """Every run directory behind several `--model` values (ensembles expanded, order kept)."""
    return [member for folder in folders for member in ensemble_members(folder)]


def describe_ensemble(manifest: dict[str, Any], folder: Path) -> str:
    """One line per held-out score (mean +- sd over the folds) and where the ensemble is."""
    parts = [f"{name} {v['mean']:.4f} +- {v['sd']:.4f}" for name, v in manifest.get("summary", {}).items()]
    held_out = "; ".join(parts) or "no held-out scores"
    return f"{manifest.get('folds')} folds, held out: {held_out}; ensemble in {folder} (predict --model {folder})"
