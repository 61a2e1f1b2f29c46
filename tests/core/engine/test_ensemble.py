import json

import pytest

from radlab.core.engine.ensemble import (
    ENSEMBLE_FILE,
    Selection,
    compare_line,
    ensemble_members,
    expand_members,
    read_manifest,
    train_folds,
    train_members,
    write_manifest,
)
from radlab.core.errors import RadlabDataError, RadlabError


def _fake_train(calls):
    def train_one(target, sets, resume):
        calls.append((target.name, sets, resume))
        target.mkdir(parents=True, exist_ok=True)
        (target / "config.yaml").write_text("task: demo\n")
        fold = int(sets[-1].split("=")[1])
        return {"score": 0.5 + 0.1 * fold}

    return train_one


def test_train_folds_runs_every_fold_with_its_overrides_and_writes_the_manifest(tmp_path):
    calls = []
    out = tmp_path / "ens"
    manifest = train_folds("demo", out, 3, _fake_train(calls), ["optim.lr=0.1"], False, lambda m: {"score": m["score"]})
    assert calls == [(f"fold{k}", ["optim.lr=0.1", "train.folds=3", f"train.fold={k}"], False) for k in range(3)]
    assert manifest["members"] == ["fold0", "fold1", "fold2"]
    assert manifest["summary"]["score"]["mean"] == pytest.approx(0.6)
    assert manifest["summary"]["score"]["sd"] == pytest.approx(0.1)
    assert ensemble_members(out) == [out / "fold0", out / "fold1", out / "fold2"]


def test_train_folds_refuses_a_used_folder_and_resumes_only_started_folds(tmp_path):
    out = tmp_path / "ens"
    (out / "fold0").mkdir(parents=True)
    (out / "fold0" / "config.yaml").write_text("task: demo\n")
    with pytest.raises(RadlabError, match="not empty"):
        train_folds("demo", out, 2, _fake_train([]), [], False, dict)
    calls = []
    train_folds("demo", out, 2, _fake_train(calls), [], True, dict)
    assert [(name, resume) for name, _, resume in calls] == [("fold0", True), ("fold1", False)]
    with pytest.raises(RadlabError, match="2-fold ensemble"):
        train_folds("demo", out, 3, _fake_train([]), [], True, dict)


def test_workers_of_a_distributed_run_train_but_write_no_manifest(tmp_path):
    out = tmp_path / "ens"
    calls = []
    assert train_folds("demo", out, 2, _fake_train(calls), [], False, dict, write=False) == {}
    assert len(calls) == 2 and not (out / ENSEMBLE_FILE).exists()


def test_a_plain_run_is_its_own_single_member(tmp_path):
    assert ensemble_members(tmp_path) == [tmp_path]
    assert expand_members([tmp_path, tmp_path]) == [tmp_path, tmp_path]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "unreadable"),
        (json.dumps({"kind": "other", "members": ["a"]}), "not a radlab ensemble"),
        (json.dumps({"kind": "radlab-ensemble", "members": []}), "names no members"),
        (json.dumps({"kind": "radlab-ensemble", "members": ["../elsewhere"]}), "outside the ensemble"),
        (json.dumps({"kind": "radlab-ensemble", "members": ["."]}), "outside the ensemble"),
        (json.dumps({"kind": "radlab-ensemble", "members": ["fold9"]}), "was not trained"),
    ],
)
def test_a_bad_manifest_is_one_clear_error(tmp_path, document, message):
    (tmp_path / ENSEMBLE_FILE).write_text(document)
    with pytest.raises(RadlabDataError, match=message):
        ensemble_members(tmp_path)


def test_manifest_round_trip_skips_missing_scores(tmp_path):
    write_manifest(tmp_path, "demo", ["fold0", "fold1"], [{"a": 1.0, "b": None}, {"a": 3.0, "b": None}], folds=2)
    manifest = read_manifest(tmp_path)
    assert manifest["summary"] == {"a": {"mean": 2.0, "sd": pytest.approx(2**0.5)}}
    assert manifest["held_out"][1] == {"a": 3.0, "b": None}


def _fake_members(calls, losses):
    def train_one(target, sets, resume):
        calls.append((target.name, sets, resume))
        target.mkdir(parents=True, exist_ok=True)
        (target / "config.yaml").write_text("task: demo\n")
        return {"loss": losses[target.name]}

    return train_one


def test_train_members_seeds_each_member_and_keeps_the_best_on_the_chosen_score(tmp_path):
    calls, out = [], tmp_path / "ens"
    losses = {"member0": 0.5, "member1": 0.2, "member2": 0.4, "member3": None}
    selection = Selection("loss", minimise=True, keep=2)
    manifest = train_members("demo", out, 4, _fake_members(calls, losses), ["a.b=1"], False, dict, selection, 10)
    assert calls == [(f"member{k}", ["a.b=1", f"train.seed={10 + k}"], False) for k in range(4)]
    assert manifest["type"] == "members" and manifest["members"] == ["member1", "member2"]
    assert manifest["held_out"] == [{"loss": 0.2}, {"loss": 0.4}]
    assert manifest["candidates"]["member3"] == {"loss": None}
    assert manifest["selected_on"] == {"score": "loss", "better": "lower", "keep": 2}
    assert ensemble_members(out) == [out / "member1", out / "member2"]
    resumed = []
    train_members("demo", out, 4, _fake_members(resumed, losses), [], True, dict, selection, 10)
    assert [resume for *_, resume in resumed] == [True] * 4


@pytest.mark.parametrize(
    ("scores", "minimise", "keep", "chosen"),
    [
        ([{"s": 0.3}, {"s": 0.1}, {"s": 0.2}], True, 2, [1, 2]),
        ([{"s": 0.3}, {"s": 0.1}, {"s": 0.2}], False, 2, [0, 2]),
        ([{"s": 0.3}, {"s": None}, {"s": float("nan")}, {}], False, 2, [0, 1]),  # unscored last, in order
        ([{"s": 0.5}, {"s": 0.5}, {"s": 0.5}], True, 1, [0]),  # ties: training order
        ([{"s": 0.3}, {"s": 0.1}], True, None, [0, 1]),
    ],
)
def test_a_selection_keeps_the_best_members_in_training_order(scores, minimise, keep, chosen):
    assert Selection("s", minimise, keep).choose(scores) == chosen


def test_an_ensemble_member_that_is_an_ensemble_is_expanded(tmp_path):
    for fold in ("fold0", "fold1"):
        for epoch in ("kept/epoch2", "kept/epoch1"):
            (tmp_path / fold / epoch).mkdir(parents=True)
            (tmp_path / fold / epoch / "config.yaml").write_text("task: demo\n")
        (tmp_path / fold / "config.yaml").write_text("task: demo\n")
        write_manifest(tmp_path / fold, "demo", ["kept/epoch2", "kept/epoch1"], [{}, {}], kind="epochs")
    write_manifest(tmp_path, "demo", ["fold0", "fold1"], [{}, {}], folds=2)
    assert expand_members([tmp_path]) == [
        tmp_path / fold / epoch for fold in ("fold0", "fold1") for epoch in ("kept/epoch2", "kept/epoch1")
    ]


@pytest.mark.parametrize(
    ("better", "line"),
    [
        ("higher", "ensemble kappa 0.7000 vs best member 0.6500 (m1)"),
        ("lower", "ensemble kappa 0.7000 vs best member 0.6000 (m0)"),
    ],
)
def test_the_ensemble_is_compared_with_its_best_member(better, line):
    manifest = {
        "members": ["m0", "m1"],
        "ensemble": {"kappa": 0.7},
        "members_measured": [{"kappa": 0.6}, {"kappa": 0.65}],
        "ensemble_better": better,
    }
    assert compare_line(manifest) == line


def test_a_resumed_ensemble_skips_members_finished_with_the_same_settings(tmp_path):
    out, losses = tmp_path / "ens", {"member0": 0.5, "member1": 0.2}
    selection = Selection("loss", minimise=True, keep=1)
    train_members("demo", out, 2, _fake_members([], losses), [], False, dict, selection, 0)
    for member in ("member0", "member1"):
        (out / member / "metrics.json").write_text(json.dumps({"loss": losses[member]}))
    again = []
    manifest = train_members("demo", out, 2, _fake_members(again, losses), [], True, dict, selection, 0)
    assert again == [] and manifest["members"] == ["member1"]
    both = Selection("loss", minimise=True, keep=2)
    chosen = train_members("demo", out, 2, _fake_members(again, losses), ["train.keep_members=2"], True, dict, both, 0)
    assert again == [] and chosen["members"] == ["member0", "member1"]
    longer = []
    train_members("demo", out, 2, _fake_members(longer, losses), ["train.max_epochs=9"], True, dict, selection, 0)
    assert [(name, resume) for name, _, resume in longer] == [("member0", True), ("member1", True)]


@pytest.mark.parametrize(
    ("task", "sets", "stage", "message"),
    [
        ("mura", ["train.members=2", "train.keep_members_on=nonsense"], None, "has no held-out score 'nonsense'"),
        ("ich", ["train.members=2"], "sequence", "trains every stage of every member"),
        ("mura", ["train.members=2"], None, "two ensembles"),
    ],
)
def test_ensembles_that_cannot_be_made_are_refused_before_any_training(tiny, tmp_path, task, sets, stage, message):
    from radlab.core.config import config_to_yaml
    from radlab.core.engine.driver import train
    from radlab.core.errors import RadlabConfigError
    from radlab.core.task import get_task

    out, preset = tmp_path / "out", "cpu-small"
    if stage is not None:  # a later stage of an existing ensemble of members
        (out / "member0").mkdir(parents=True)
        (out / "member0" / "config.yaml").write_text(config_to_yaml(get_task(task).load_config(preset, sets)))
        preset = None
    folds = 2 if message == "two ensembles" else None
    with pytest.raises(RadlabConfigError, match=message):
        train(get_task(task), tiny.data(task), out, preset, sets, folds=folds, stage=stage)
    assert sorted(p.name for p in out.rglob("*")) == (["config.yaml", "member0"] if stage else [])
