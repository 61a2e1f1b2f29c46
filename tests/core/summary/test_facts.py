import json
import shutil

import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.summary.facts import format_value, numbers, read_facts, with_intervals
from radlab.core.summary.recipe import differences


def test_numbers_flatten_a_json_tree_leaving_out_lists_and_strings():
    data = {"a": 1, "b": {"c": 0.5, "d": None, "e": "x", "f": [1, 2], "g": True}, "h": float("nan")}
    assert numbers(data) == {"a": 1.0, "b.c": 0.5, "b.d": None, "h": None}


def test_an_interval_is_folded_into_its_metrics_row():
    metrics = {"kappa": 0.5, "kappa_lower": 0.4, "kappa_upper": 0.6, "auroc": 0.9, "loss_low": 1.0}
    assert with_intervals(metrics) == {
        "kappa": (0.5, 0.4, 0.6),
        "auroc": (0.9, None, None),
        "loss_low": (1.0, None, None),  # no `loss` beside it: a metric of its own
    }


@pytest.mark.parametrize(
    ("value", "text"), [((0.81234, 0.75, 0.875), "0.8123 [0.75, 0.875]"), ((2.0,), "2"), ((None,), "-")]
)
def test_format_value(value, text):
    assert format_value(*value) == text


def test_a_tune_folder_is_its_best_trial_and_an_ensemble_its_first_members_config(tiny, tmp_path):
    run = tiny.run("toy")
    tune = tmp_path / "tune"
    shutil.copytree(run, tune / "trial-0003")
    (tune / "best.yaml").write_text(
        "# radlab tune: the best of 4\n# trial 3, auroc 1; train with --config\ntask: toy\n"
    )
    found = read_facts(tune)
    assert found.kind == "tune (best: trial-0003)" and found.config == read_facts(run).config
    folds = tmp_path / "folds"
    shutil.copytree(run, folds / "fold0")
    (folds / "ensemble.json").write_text(json.dumps({"members": ["fold0"], "mean": {"auroc": 0.75}}))
    found = read_facts(folds)
    assert found.kind == "ensemble" and found.metrics == {"ensemble.mean.auroc": 0.75}
    assert found.environment == json.loads((run / "environment.json").read_text())


def test_a_folder_that_is_no_run_is_one_line(tmp_path):
    with pytest.raises(RadlabDataError, match="not a radlab run directory, ensemble or tune folder"):
        read_facts(tmp_path)


def test_the_recipe_differences_are_the_rows_not_plain_same(tmp_path):
    (tmp_path / "x.md").write_text(
        "| item | original | radlab | verdict |\n|---|---|---|---|\n| Backbone | A | `a: 1` | same |\n"
        "| Input | 320 | `b: 2` | same (interpolation unstated) |\n| Epochs | ? | `c: 3` | radlab: a budget |\n"
    )
    assert differences(tmp_path / "x.md") == [
        ["Input", "320", "`b: 2`", "same (interpolation unstated)"],
        ["Epochs", "?", "`c: 3`", "radlab: a budget"],
    ]
