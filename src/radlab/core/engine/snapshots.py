"""Kept epochs: the best K epochs of one run (or exactly the epochs asked for), each saved as a run directory
of its own under RUN/kept/epoch<e>/, and RUN/ensemble.json naming them, so that `predict --model RUN`
averages them as it averages folds.

This is the pneumonia solution's "several epochs of each fold" and the slice CNN epochs that ICH trains one
sequence model on each. A member holds what the recipe's `export` writes for that epoch plus copies of the
run's own files that loading it needs (config.yaml, data.json and the recipe's `member_files`).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L

from radlab.core.engine.ensemble import kept_members, member_root, write_manifest
from radlab.core.engine.recipe import Recipe
from radlab.core.engine.run_dir import RunDir
from radlab.core.io.atomic import atomic_write_text

SHARED_FILES = ("config.yaml", "data.json")
"""Copied into every member; config.yaml, the first, is written last and so marks a complete member."""


@dataclass(frozen=True)
class KeptEpochs:
    """Which epochs of a fit are kept, and where.

    `run` is the run that becomes the ensemble; the recipe exports into member/`inside` (ICH: "slice", the
    stage whose epochs they are); `manifest` False leaves ensemble.json to the task (ICH writes it once each
    member has its sequence model)."""

    run: Path
    best: int | None = None
    epochs: tuple[int, ...] | None = None
    inside: str = ""
    manifest: bool = True
    task: str = ""

    def member(self, epoch: int) -> Path:
        return member_root(self.run, epoch)


class SnapshotKeeper(L.Callback):
    """After each validation, keeps the epoch when it is among the best `plan.best` on `monitor` (or listed in
    `plan.epochs`), drops the one it displaces, and rewrites ensemble.json: the members best first.

    Its state (the kept epochs and their scores) travels in the checkpoint, so a resumed run keeps the same
    set; a member is complete before it is listed, so a killed run leaves a usable ensemble."""

    def __init__(self, plan: KeptEpochs, monitor: str, mode: str) -> None:
        self.plan = plan
        self.monitor = monitor
        self.mode = mode
        self.kept: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not isinstance(pl_module, Recipe):
            return
        epoch = trainer.current_epoch + 1
        value = trainer.callback_metrics.get(self.monitor)
        score = float(value) if value is not None else math.nan
        if not self._wanted(epoch, score):
            return
        self._save(pl_module, epoch)
        self.kept = [(e, s) for e, s in self.kept if e != epoch] + [(epoch, score)]
        dropped = None
        if self.plan.best is not None and len(self.kept) > self.plan.best:
            dropped = self._ranked()[-1][0]
            self.kept = [(e, s) for e, s in self.kept if e != dropped]
        if self.plan.manifest:
            self._write_manifest()  # before the dropped member goes: the manifest never names a missing one
        if dropped is not None:
            shutil.rmtree(self.plan.member(dropped), ignore_errors=True)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Make kept/ agree with the state the checkpoint restored: a run killed between keeping an epoch and
        checkpointing it left a member the state does not know (removed), or lost one it does (forgotten)."""
        if not trainer.is_global_zero:
            return
        self.kept = [(e, s) for e, s in self.kept if (self.plan.member(e) / SHARED_FILES[0]).is_file()]
        known = {self.plan.member(e) for e, _ in self.kept}
        for member in kept_members(self.plan.run):
            if member not in known:
                shutil.rmtree(member, ignore_errors=True)
        if self.plan.manifest and self.kept:
            self._write_manifest()

    def _wanted(self, epoch: int, score: float) -> bool:
        if self.plan.epochs is not None:
            return epoch in self.plan.epochs
        if math.isnan(score):
            return False
        others = [(e, s) for e, s in self.kept if e != epoch]
        if self.plan.best is None or len(others) < self.plan.best:
            return True
        worst = self._ranked(others)[-1][1]
        return score < worst if self.mode == "min" else score > worst

    def _ranked(self, kept: list[tuple[int, float]] | None = None) -> list[tuple[int, float]]:
        """Best first; NaN last; ties by epoch."""
        sign = 1.0 if self.mode == "min" else -1.0
        return sorted(kept if kept is not None else self.kept, key=lambda k: (math.isnan(k[1]), sign * k[1], k[0]))

    def _save(self, recipe: Recipe[Any], epoch: int) -> None:
        member = self.plan.member(epoch)
        target = member / self.plan.inside if self.plan.inside else member
        target.mkdir(parents=True, exist_ok=True)
        recipe.export(RunDir(target), epoch)
        for name in (*recipe.member_files, *reversed(SHARED_FILES)):  # config.yaml last: the member is complete
            source = self.plan.run / name
            if source.is_file():
                atomic_write_text(member / name, source.read_text(encoding="utf-8"))

    def _write_manifest(self) -> None:
        ranked = self._ranked()
        members = [self.plan.member(e).relative_to(self.plan.run).as_posix() for e, _ in ranked]
        name = self.monitor.removeprefix("val/")
        write_manifest(
            self.plan.run,
            self.plan.task,
            members,
            [{name: s} for _, s in ranked],
            kind="epochs",
            selected_on={"score": self.monitor, "better": "lower" if self.mode == "min" else "higher"}
            | ({"keep": self.plan.best} if self.plan.best is not None else {"epochs": list(self.plan.epochs or ())}),
        )

    def state_dict(self) -> dict[str, Any]:
        return {"kept": [[e, s] for e, s in self.kept]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.kept = [(int(e), float(s)) for e, s in state_dict.get("kept", [])]
