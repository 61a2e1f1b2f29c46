import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from radlab.core.metrics import binary_confusion, roc_auc, sensitivity_specificity


@pytest.mark.parametrize(
    ("truth", "scores", "expected"),
    [
        ([0, 1], [0.1, 0.9], 1.0),
        ([0, 1], [0.9, 0.1], 0.0),
        ([0, 1], [0.5, 0.5], 0.5),
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
        ([1, 1, 1], [0.1, 0.2, 0.3], float("nan")),
    ],
)
def test_auroc_hand_cases(truth, scores, expected):
    np.testing.assert_equal(roc_auc(truth, scores), expected)


@pytest.mark.parametrize("seed", range(8))
def test_auroc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300), 1)  # many ties
    assert abs(roc_auc(truth, scores) - roc_auc_score(truth, scores)) < 1e-12


@pytest.mark.parametrize(
    ("truth", "pred", "expected"),
    [([1, 1, 0, 0], [1, 0, 0, 1], (0.5, 0.5)), ([1, 1, 1], [1, 1, 0], (2 / 3, float("nan")))],
)
def test_sensitivity_specificity(truth, pred, expected):
    np.testing.assert_equal(sensitivity_specificity(truth, pred), expected)


@pytest.mark.parametrize("seed", range(4))
def test_confusion_matches_sklearn_and_is_always_two_by_two(seed):
    rng = np.random.default_rng(seed)
    truth, pred = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
    assert (binary_confusion(truth, pred) == confusion_matrix(truth, pred, labels=[0, 1])).all()
    assert binary_confusion([0, 0], [0, 0]).tolist() == [[2, 0], [0, 0]]


def test_non_binary_labels_are_refused():
    with pytest.raises(ValueError, match="only 0 and 1"):
        binary_confusion([0, 1], [0, 0.7])
