import json

import pytest

from radlab.core.engine.ensemble import (
    ENSEMBLE_FILE,
    ensemble_members,
    expand_members,
    read_manifest,
    train_folds,
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
    write_manifest(tmp_path, "demo", 2, [{"a": 1.0, "b": None}, {"a": 3.0, "b": None}])
    manifest = read_manifest(tmp_path)
    assert manifest["summary"] == {"a": {"mean": 2.0, "sd": pytest.approx(2**0.5)}}
    assert manifest["held_out"][1] == {"a": 3.0, "b": None}
