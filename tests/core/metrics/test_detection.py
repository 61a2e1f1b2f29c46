"""The RSNA Pneumonia metric on hand-worked cases and against a plain re-implementation."""

import numpy as np
import pytest

from radlab.core.metrics.detection import RSNA_THRESHOLDS, image_precision, iou_matrix, mean_average_precision

BOX = [10.0, 10.0, 20.0, 20.0]


def test_thresholds_are_the_challenges():
    assert RSNA_THRESHOLDS == (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [0, 0, 20, 10], 0.5),
        ([0, 0, 10, 10], [5, 0, 10, 10], 50 / 150),
        ([0, 0, 10, 10], [20, 20, 5, 5], 0.0),
        ([0, 0, 0, 10], [0, 0, 0, 10], 0.0),
    ],
)
def test_iou(a, b, expected):
    assert iou_matrix([a], [b])[0, 0] == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    ("truth", "predicted", "scores", "comparison", "expected"),
    [
        ([], [], [], ">=", None),  # no truth, no prediction: left out
        ([], [BOX], [0.9], ">=", 0.0),  # predictions without truth
        ([BOX], [], [], ">=", 0.0),  # truth without prediction
        ([BOX], [BOX], [0.9], ">=", 1.0),  # one perfect box
        # IoU exactly 0.5: a hit at 0.40, 0.45, 0.50 with >=, at 0.40, 0.45 with >; the rest 0/(0+1+1)
        ([[0, 0, 10, 10]], [[0, 0, 20, 10]], [0.9], ">=", 3 / 8),
        ([[0, 0, 10, 10]], [[0, 0, 20, 10]], [0.9], ">", 2 / 8),
        # more predictions than truths: one hit, one false positive at every threshold
        ([BOX], [BOX, [200, 200, 10, 10]], [0.9, 0.8], ">=", 0.5),
        # overlapping predictions on one truth: the second is a false positive wherever the first hits
        ([BOX], [BOX, [11, 10, 20, 20]], [0.9, 0.8], ">=", 0.5),
    ],
)
def test_hand_worked_cases(truth, predicted, scores, comparison, expected):
    result = image_precision(
        np.array(truth).reshape(-1, 4), np.array(predicted).reshape(-1, 4), scores, comparison=comparison
    )
    assert result == (None if expected is None else pytest.approx(expected, abs=1e-15))


def test_confidence_order_decides_which_prediction_matches():
    # the higher-confidence box has IoU 0.6 with the truth, the lower one is perfect: up to 0.60 the first
    # matches and the perfect box is a false positive; above 0.60 the perfect box matches and the first is.
    shifted = [10.0, 10.0, 20.0, 20.0 * 0.6]  # IoU 0.6 with BOX
    assert iou_matrix([BOX], [shifted])[0, 0] == pytest.approx(0.6)
    assert image_precision(np.array([BOX]), np.array([shifted, BOX]), [0.9, 0.5]) == pytest.approx(0.5)
    # two truths and one box overlapping both: one hit, one miss
    two = np.array([[0, 0, 10, 10], [10, 0, 10, 10]], dtype=float)
    assert image_precision(two, np.array([[0, 0, 20, 10]]), [0.9]) == pytest.approx(3 / 8 * 0.5)


def test_images_without_truth_or_prediction_are_left_out_of_the_mean():
    score, per_threshold, scored = mean_average_precision(
        [np.zeros((0, 4)), np.array([BOX]), np.zeros((0, 4))],
        [np.zeros((0, 4)), np.array([BOX]), np.array([BOX])],
        [np.zeros(0), np.array([0.9]), np.array([0.3])],
    )
    assert scored == 2 and score == pytest.approx(0.5)
    assert per_threshold[0.4] == pytest.approx(0.5)


def _plain_iou(a, b):
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - ix * iy
    return ix * iy / union if union > 0 else 0.0


def _plain_image_score(truth, predicted, scores):
    """The reference code's algorithm written out with plain loops."""
    if not truth and not predicted:
        return None
    if not truth or not predicted:
        return 0.0
    ranked = [p for _, p in sorted(zip(scores, predicted, strict=True), key=lambda pair: -pair[0])]
    total = 0.0
    for t in RSNA_THRESHOLDS:
        used, tp = set(), 0
        for gt in truth:
            for j, box in enumerate(ranked):
                if j not in used and _plain_iou(gt, box) >= t:
                    used.add(j)
                    tp += 1
                    break
        total += tp / (tp + (len(ranked) - tp) + (len(truth) - tp))
    return total / len(RSNA_THRESHOLDS)


def test_agrees_with_a_plain_implementation_on_1000_random_images():
    rng = np.random.default_rng(0)
    truths, preds, confs, expected = [], [], [], []
    for _ in range(1000):
        n_truth, n_pred = int(rng.integers(0, 4)), int(rng.integers(0, 5))
        truth = [list(rng.uniform(0, 60, 2)) + list(rng.uniform(10, 40, 2)) for _ in range(n_truth)]
        predicted = []
        for _ in range(n_pred):
            if truth and rng.random() < 0.7:
                base = truth[int(rng.integers(len(truth)))]
                predicted.append(
                    [v + rng.normal(0, 4) for v in base[:2]] + [max(1.0, v + rng.normal(0, 4)) for v in base[2:]]
                )
            else:
                predicted.append(list(rng.uniform(0, 60, 2)) + list(rng.uniform(10, 40, 2)))
        scores = list(rng.random(n_pred))
        truths.append(np.array(truth).reshape(-1, 4))
        preds.append(np.array(predicted).reshape(-1, 4))
        confs.append(np.array(scores))
        expected.append(_plain_image_score(truth, predicted, scores))
    ours = [image_precision(t, p, s) for t, p, s in zip(truths, preds, confs, strict=True)]
    for mine, plain in zip(ours, expected, strict=True):
        assert (mine is None and plain is None) or abs(mine - plain) < 1e-12
    kept = [e for e in expected if e is not None]
    assert abs(mean_average_precision(truths, preds, confs)[0] - float(np.mean(kept))) < 1e-12
