"""Ensembles as one core capability: a folder whose ensemble.json names member run directories, which every
`predict --model` accepts and averages (recursively: a fold may itself be an ensemble of epochs).

Three ways to make one, all recorded the same way (members, each member's held-out scores, how they were
chosen, and the ensemble's own held-out score beside the best member's):
- `folds`: `--folds K` trains fold 0..K-1 of a k-fold split into OUT/fold<i>/;
- `members`: `train.members: N` trains N runs with seeds seed..seed+N-1 into OUT/member<k>/ and keeps the
  best `train.keep_members` on a held-out score (MURA's "the 5 models with the lowest validation losses");
- `epochs`: `train.snapshots: K` keeps the K best epochs of one run as RUN/kept/epoch<e>/ (see snapshots.py;
  the pneumonia solution's epochs, ICH's one sequence model per CNN epoch).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from radlab.core.config import describe_validation_error
from radlab.core.console import info, warn
from radlab.core.engine.run_dir import RunDir, finite, refuse_json_constant
from radlab.core.errors import RadlabDataError, RadlabError
from radlab.core.io.atomic import atomic_write_text

if TYPE_CHECKING:
    from radlab.core.task import Task

ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_KIND = "radlab-ensemble"
EnsembleType = Literal["folds", "members", "epochs"]

TrainOne = Callable[[Path, list[str], bool], dict[str, Any]]
"""(fold run directory, overrides, resume) -> that fold's metrics."""


KEPT_FOLDER = "kept"


def member_root(run: Path, epoch: int) -> Path:
    """Where a run keeps one of its epochs as a run directory of its own (snapshots.py)."""
    return run / KEPT_FOLDER / f"epoch{epoch}"


def kept_members(run: Path) -> list[Path]:
    """The member folders of RUN/kept/, in epoch order."""
    folder = run / KEPT_FOLDER
    found = [p for p in folder.glob("epoch*") if p.is_dir() and p.name[5:].isdigit()] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[5:]))


def _ensemble_folder(out: str | Path, write: bool, resume: bool, what: str) -> Path:
    """The ensemble's folder, made; one that already holds files only when resuming it."""
    out = Path(out)
    if write and out.exists() and any(out.iterdir()) and not resume:
        raise RadlabError(f"{out} is not empty; pick a new --out, or --resume to continue its {what}")
    out.mkdir(parents=True, exist_ok=True)
    return out


FINISHED_FILE = "finished.json"
SELECTION_KEYS = ("train.keep_members=", "train.keep_members_on=")


def _train_or_reuse(train_one: TrainOne, target: Path, sets: list[str], resume: bool, write: bool) -> dict[str, Any]:
    """One member trained (or resumed), then marked finished with the settings it was given; a resumed
    ensemble skips a finished member given the same settings (another training would add an epoch to one
    that stopped early) and continues it when they changed (`--set train.max_epochs=...`)."""
    finished = target / FINISHED_FILE
    given = [item for item in sets if not item.startswith(SELECTION_KEYS)]  # choosing again retrains nothing
    if resume and finished.is_file() and json.loads(finished.read_text(encoding="utf-8")).get("sets") == given:
        info(f"  {target.name}: finished earlier with these settings, its scores reused")
        return dict(RunDir(target).read_json("metrics.json"))
    metrics = train_one(target, sets, resume and (target / "config.yaml").is_file())
    if write:
        atomic_write_text(finished, json.dumps({"sets": given}) + "\n")
    return metrics


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
    out = _ensemble_folder(out, write, resume, "folds")
    if resume and (out / ENSEMBLE_FILE).is_file() and (held := read_manifest(out).get("folds")) != folds:
        what = f"a {held}-fold ensemble" if held else "an ensemble of another kind"
        raise RadlabError(f"{out} holds {what}; --folds must match")
    scores: list[dict[str, float | None]] = []
    for fold in range(folds):
        info(f"fold {fold + 1}/{folds}")
        target = fold_dir(out, fold)
        fold_sets = [*overrides, f"{section}.folds={folds}", f"{section}.fold={fold}"]
        metrics = _train_or_reuse(train_one, target, fold_sets, resume, write)
        scores.append(score(metrics) if write else {})
    if not write:
        return {}
    write_manifest(out, task, [fold_dir(Path("."), k).as_posix() for k in range(folds)], scores, folds=folds)
    return read_manifest(out)


def member_dir(out: Path, k: int) -> Path:
    return out / f"member{k}"


def train_members(
    task: str,
    out: str | Path,
    count: int,
    train_one: TrainOne,
    overrides: Sequence[str],
    resume: bool,
    score: Callable[[dict[str, Any]], dict[str, float | None]],
    selection: Selection,
    seed: int,
    write: bool = True,
) -> dict[str, Any]:
    """Train `count` runs into out/member<k>/ (`train.seed` = seed + k), keep `selection.keep` of them and
    write out/ensemble.json; with `resume`, members already started continue and the others start."""
    out = _ensemble_folder(out, write, resume, "members")
    names, scores = [], []
    for k in range(count):
        info(f"member {k + 1}/{count} (seed {seed + k})")
        target = member_dir(out, k)
        metrics = _train_or_reuse(train_one, target, [*overrides, f"train.seed={seed + k}"], resume, write)
        names.append(target.name)
        scores.append(score(metrics) if write else {})
    if not write:
        return {}
    if not any(isinstance(s.get(selection.on), int | float) for s in scores):
        warn(f"no member has a held-out {selection.on!r} score; the first {selection.keep} in training order are kept")
    kept = selection.choose(scores)
    candidates = dict(zip(names, scores, strict=True))
    write_manifest(
        out,
        task,
        [names[i] for i in kept],
        [scores[i] for i in kept],
        kind="members",
        candidates=candidates,
        selected_on=selection.describe(),
    )
    return read_manifest(out)


@dataclass(frozen=True)
class Selection:
    """Which members an ensemble keeps: the `keep` best on the held-out score `on` (lower is better when
    `minimise`); a member without that score ranks last. `keep` None keeps them all."""

    on: str
    minimise: bool
    keep: int | None

    def choose(self, scores: Sequence[dict[str, float | None]]) -> list[int]:
        def rank(i: int) -> tuple[bool, float]:
            value = scores[i].get(self.on)
            if value is None or not math.isfinite(value):
                return True, 0.0
            return False, value if self.minimise else -value

        order = sorted(range(len(scores)), key=rank)  # stable: ties keep training order
        return sorted(order[: self.keep if self.keep is not None else len(order)])

    def describe(self) -> dict[str, Any]:
        return {"score": self.on, "better": "lower" if self.minimise else "higher", "keep": self.keep}


def summarise(held_out: Sequence[dict[str, float | None]]) -> dict[str, dict[str, float]]:
    """Per score name: the mean and sd over the members that have it (finite values only)."""
    summary = {}
    for name in sorted({name for s in held_out for name in s}):
        values = [value for s in held_out if (value := s.get(name)) is not None and math.isfinite(value)]
        if values:
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[name] = {"mean": statistics.fmean(values), "sd": sd}
    return summary


def write_manifest(
    out: Path,
    task: str,
    members: Sequence[str],
    held_out: Sequence[dict[str, float | None]],
    *,
    kind: EnsembleType = "folds",
    folds: int | None = None,
    **extra: Any,
) -> None:
    """ensemble.json: the task, the member folders (relative), each member's held-out scores and their
    mean and sd, and `extra` (how members were chosen, the ensemble's own score)."""
    summary = summarise(held_out)
    document: dict[str, Any] = {"kind": ENSEMBLE_KIND, "task": task, "type": kind}
    if folds is not None:
        document["folds"] = folds
    document |= {"members": list(members), "held_out": list(held_out), "summary": summary, **extra}
    atomic_write_text(out / ENSEMBLE_FILE, json.dumps(finite(document), indent=2, allow_nan=False) + "\n")


class _Scores(BaseModel):
    """The numbers of ensemble.json: held-out scores per member, their summary, and the ensemble's own
    (`ensemble`) beside each member's measured the same way (`members_measured`), finite or null."""

    held_out: list[dict[str, float | None]] = Field(default_factory=list)
    summary: dict[str, dict[str, float]] = Field(default_factory=dict)
    ensemble: dict[str, float | None] = Field(default_factory=dict)
    members_measured: list[dict[str, float | None]] = Field(default_factory=list)
    model_config = ConfigDict(allow_inf_nan=False)


SCORE_KEYS = ("held_out", "summary", "ensemble", "members_measured")


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
        _Scores.model_validate({key: document[key] for key in SCORE_KEYS if key in document})
    except ValidationError as exc:
        raise RadlabDataError(path, describe_validation_error(exc)) from None
    return document


def is_ensemble(folder: str | Path) -> bool:
    return (Path(folder) / ENSEMBLE_FILE).is_file()


def ensemble_members(folder: str | Path) -> list[Path]:
    """The run directories behind `--model folder`: its members for an ensemble (each expanded again when it
    is an ensemble itself: folds of kept epochs), else [folder] itself.

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
            raise RadlabDataError(member / "config.yaml", "missing: the ensemble's member was not trained")
        members.extend(ensemble_members(folder / name))
    return members


def expand_members(folders: Sequence[str | Path]) -> list[Path]:
    """Every run directory behind several `--model` values (ensembles expanded, order kept)."""
    return [member for folder in folders for member in ensemble_members(folder)]


def describe_ensemble(manifest: dict[str, Any], folder: Path) -> str:
    """The held-out scores (mean +- sd over the members), the ensemble's own beside its best member's when
    measured, and where the ensemble is."""
    parts = [f"{name} {v['mean']:.4f} +- {v['sd']:.4f}" for name, v in manifest.get("summary", {}).items()]
    held_out = "; ".join(parts) or "no held-out scores"
    what = (
        f"{manifest.get('folds')} folds"
        if manifest.get("type", "folds") == "folds"
        else (f"{len(manifest['members'])} {manifest.get('type')} ({', '.join(manifest['members'])})")
    )
    line = f"{what}, held out: {held_out}"
    if comparison := compare_line(manifest):
        line += f"; {comparison}"
    return f"{line}; ensemble in {folder} (predict --model {folder})"


def compare_line(manifest: dict[str, Any]) -> str:
    """ "ensemble kappa 0.7100 vs best member 0.6900 (member3)", from the scores measured the same way."""
    ensemble, measured = manifest.get("ensemble") or {}, manifest.get("members_measured") or []
    better = manifest.get("ensemble_better", "higher")
    parts = []
    for name, value in ensemble.items():
        values = [(m.get(name), member) for m, member in zip(measured, manifest["members"], strict=False)]
        found = [(v, member) for v, member in values if v is not None]
        if value is None or not found:
            continue
        best, where = (min if better == "lower" else max)(found)
        parts.append(f"ensemble {name} {value:.4f} vs best member {best:.4f} ({where})")
    return "; ".join(parts)


def update_manifest(folder: Path, **fields: Any) -> dict[str, Any]:
    """ensemble.json with `fields` set (written atomically, finite)."""
    document = read_manifest(folder) | fields
    atomic_write_text(folder / ENSEMBLE_FILE, json.dumps(finite(document), indent=2, allow_nan=False) + "\n")
    return document


def score_ensemble(
    task: Task,
    folder: Path,
    data_root: Path,
    held_out: Callable[[dict[str, Any]], dict[str, float | None]] | None = None,
) -> dict[str, Any]:
    """Predict the held-out data with the ensemble and with each member alone, the way `radlab export`
    checks its engines (the task's `ExportSpec.held_out`, the official metric of `predict`'s own output),
    and record both in ensemble.json. The members share their held-out data (one run's kept epochs, or seeds
    validated on one split); a folds ensemble has no common held-out data and is not scored here. With
    `held_out` (the task's `Training.held_out`), each member's own validation scores are recorded too."""
    manifest = read_manifest(folder)
    if held_out is not None:
        scores = [held_out(RunDir(folder / name).read_json("metrics.json")) for name in manifest["members"]]
        manifest = update_manifest(folder, held_out=scores, summary=summarise(scores))
    if task.export is None:
        return manifest
    import tempfile

    spec = task.export.get()
    members = [folder / name for name in manifest["members"]]
    info(f"scoring the ensemble and its {len(members)} members on the held-out data")
    with tempfile.TemporaryDirectory(prefix="radlab-ensemble-") as scratch:
        check = spec.held_out(RunDir(members[0]), data_root, Path(scratch))
        ensemble, _ = check.predict("torch", [folder], device="auto")  # the GPU training had, when there is one
        measured = [check.predict("torch", [member], device="auto")[0] for member in members]
    better = "lower" if task.objective.direction == "minimize" else "higher"
    return update_manifest(
        folder,
        ensemble={spec.metric: ensemble},
        members_measured=[{spec.metric: value} for value in measured],
        ensemble_better=better,
    )
