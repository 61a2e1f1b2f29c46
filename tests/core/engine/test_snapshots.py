import json
from types import SimpleNamespace

import pytest
import torch

from radlab.core.engine.ensemble import kept_members
from radlab.core.engine.recipe import Recipe
from radlab.core.engine.run_dir import RunDir
from radlab.core.engine.snapshots import KeptEpochs, SnapshotKeeper


class _Exporting(Recipe[object]):
    """A recipe whose export writes the epoch it was asked for (and needs the run's split.json)."""

    member_files = ("split.json",)

    def export(self, run: RunDir, epoch: int) -> None:
        run.write_json("metrics.json", {"epoch": epoch})


def _run_epochs(keeper: SnapshotKeeper, scores: list[float]) -> None:
    recipe = _Exporting(object())
    for epoch, score in enumerate(scores):
        trainer = SimpleNamespace(
            sanity_checking=False,
            is_global_zero=True,
            current_epoch=epoch,
            callback_metrics={"val/score": torch.tensor(score)},
        )
        keeper.on_validation_end(trainer, recipe)  # type: ignore[arg-type]


def _run(tmp_path):
    for name, text in (("config.yaml", "task: demo\n"), ("data.json", "{}"), ("split.json", "[]")):
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("best", "epochs", "mode", "scores", "members"),
    [
        (2, None, "max", [0.1, 0.5, 0.3, 0.4], [2, 4]),
        (2, None, "min", [0.1, 0.5, 0.3, 0.4], [1, 3]),
        (3, None, "max", [0.2, float("nan"), 0.1], [1, 3]),  # a NaN epoch is never kept
        (1, None, "max", [0.3, 0.3, 0.3], [1]),  # a tie does not displace
        (None, (1, 3), "max", [0.9, 0.8, 0.1], [1, 3]),  # exactly the epochs asked for, best first
    ],
)
def test_the_keeper_holds_the_best_epochs_as_runs_of_their_own(tmp_path, best, epochs, mode, scores, members):
    run = _run(tmp_path)
    keeper = SnapshotKeeper(KeptEpochs(run, best, epochs, task="demo"), "val/score", mode)
    _run_epochs(keeper, scores)
    assert sorted(int(p.name.removeprefix("epoch")) for p in kept_members(run)) == sorted(members)
    manifest = json.loads((run / "ensemble.json").read_text())
    ranked = sorted(members, key=lambda e: (-scores[e - 1] if mode == "max" else scores[e - 1], e))
    assert manifest["members"] == [f"kept/epoch{e}" for e in ranked]
    assert manifest["type"] == "epochs" and manifest["selected_on"]["score"] == "val/score"
    for e in members:
        member = run / "kept" / f"epoch{e}"
        assert json.loads((member / "metrics.json").read_text()) == {"epoch": e}
        assert {p.name for p in member.iterdir()} == {"metrics.json", "config.yaml", "data.json", "split.json"}


def test_a_resumed_keeper_keeps_the_same_set(tmp_path):
    run = _run(tmp_path)
    first = SnapshotKeeper(KeptEpochs(run, 2, task="demo"), "val/score", "max")
    _run_epochs(first, [0.5, 0.1])
    resumed = SnapshotKeeper(KeptEpochs(run, 2, task="demo"), "val/score", "max")
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))  # as the checkpoint carries it
    recipe = _Exporting(object())
    trainer = SimpleNamespace(
        sanity_checking=False, is_global_zero=True, current_epoch=2, callback_metrics={"val/score": 0.3}
    )
    resumed.on_validation_end(trainer, recipe)  # type: ignore[arg-type]
    assert [p.name for p in kept_members(run)] == ["epoch1", "epoch3"]


def test_a_member_the_task_completes_later_is_not_listed_yet(tmp_path):
    run = _run(tmp_path)
    keeper = SnapshotKeeper(KeptEpochs(run, 2, inside="slice", manifest=False), "val/score", "max")
    _run_epochs(keeper, [0.5, 0.6])
    assert not (run / "ensemble.json").exists()
    assert (run / "kept" / "epoch2" / "slice" / "metrics.json").is_file()
    assert (run / "kept" / "epoch2" / "config.yaml").is_file()


def test_a_resumed_keeper_makes_kept_agree_with_its_restored_state(tmp_path):
    """Killed between keeping epoch 3 (dropping 1) and checkpointing it: the state says {1, 2}, disk holds
    {2, 3}. On resume the unknown member goes, the lost one is forgotten, and the manifest names what is there."""
    run = _run(tmp_path)
    first = SnapshotKeeper(KeptEpochs(run, 2, task="demo"), "val/score", "max")
    _run_epochs(first, [0.1, 0.5])
    state = json.loads(json.dumps(first.state_dict()))
    _run_epochs_from(first, 2, [0.9])
    assert [p.name for p in kept_members(run)] == ["epoch2", "epoch3"]
    resumed = SnapshotKeeper(KeptEpochs(run, 2, task="demo"), "val/score", "max")
    resumed.load_state_dict(state)
    resumed.on_fit_start(SimpleNamespace(is_global_zero=True), _Exporting(object()))  # type: ignore[arg-type]
    assert [p.name for p in kept_members(run)] == ["epoch2"]
    assert resumed.state_dict() == {"kept": [[2, 0.5]]}
    assert json.loads((run / "ensemble.json").read_text())["members"] == ["kept/epoch2"]


def _run_epochs_from(keeper: SnapshotKeeper, first: int, scores: list[float]) -> None:
    recipe = _Exporting(object())
    for k, score in enumerate(scores):
        trainer = SimpleNamespace(
            sanity_checking=False, is_global_zero=True, current_epoch=first + k, callback_metrics={"val/score": score}
        )
        keeper.on_validation_end(trainer, recipe)  # type: ignore[arg-type]
