import json

import numpy as np
import pytest
from sklearn.metrics import log_loss

from radlab.tasks.ich.evaluate import scores, weighted_log_loss
from radlab.tasks.ich.formats import SUBTYPES, write_submission
from tests.conftest import run_cli


@pytest.mark.parametrize("seed", range(10))
def test_weighted_log_loss_equals_sklearn_with_sample_weights(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, (200, 6))
    probs = np.clip(rng.random((200, 6)), 0.01, 0.99)
    weights = np.tile([1, 1, 1, 1, 1, 2], 200)
    expected = log_loss(labels.ravel(), probs.ravel(), sample_weight=weights)
    assert abs(weighted_log_loss(labels, probs) - expected) < 1e-12
    per_subtype = scores(labels, probs)
    for j, subtype in enumerate(SUBTYPES):
        assert abs(per_subtype[f"{subtype}_log_loss"] - log_loss(labels[:, j], probs[:, j], labels=[0, 1])) < 1e-12


def test_hand_worked_value():
    # one image, all negative, every probability 0.5: each term is log 2
    assert weighted_log_loss(np.zeros((1, 6)), np.full((1, 6), 0.5)) == pytest.approx(np.log(2), abs=1e-15)


def test_cli_json_keys_and_unknown_images(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("ID,Label\n" + "".join(f"ID_a_{s},{int(s == 'any')}\n" for s in SUBTYPES))
    write_submission(tmp_path / "sub.csv", ["ID_a"], np.full((1, 6), 0.5))
    result = run_cli("ich", "evaluate", truth, tmp_path / "sub.csv")
    assert result.returncode == 0
    assert list(json.loads(result.stdout)) == ["weighted_log_loss", *(f"{s}_log_loss" for s in SUBTYPES), "images"]
    write_submission(tmp_path / "other.csv", ["ID_zzz"], np.full((1, 6), 0.5))
    bad = run_cli("ich", "evaluate", truth, tmp_path / "other.csv")
    assert bad.returncode == 1 and "not in truth.csv" in bad.stderr
