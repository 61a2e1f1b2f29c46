import numpy as np
import pytest

from radlab.core.metrics.calibration import (
    CumulativeCalibration,
    binary_nll,
    expected_calibration_error,
    reliability_bins,
)


@pytest.mark.parametrize(
    ("truth", "probs", "bins", "ece"),
    [
        ([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3], 2, 0.175),  # gaps 0.2 and 0.15, two cases each
        ([0, 1], [0.5, 0.5], 10, 0.0),  # one bin, frequency 0.5 = mean probability
        ([1], [1.0], 10, 0.0),  # a probability of exactly 1 falls in the last bin
        ([0, 0, 0, 0], [0.9, 0.9, 0.9, 0.9], 15, 0.9),
        ([1, 0, 1, 1], [0.75, 0.25, 0.75, 0.75], 4, 0.25),  # bin 1: 0.25 vs 0; bin 3: 0.75 vs 1
    ],
)
def test_expected_calibration_error_of_hand_worked_cases(truth, probs, bins, ece):
    assert expected_calibration_error(truth, probs, bins) == pytest.approx(ece, abs=1e-12)


def test_reliability_bins_count_average_and_leave_empty_bins_nan():
    found = reliability_bins([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3], bins=2)
    np.testing.assert_array_equal(found.edges, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(found.counts, [2, 2])
    np.testing.assert_allclose(found.confidence, [0.2, 0.85])
    np.testing.assert_allclose(found.frequency, [0.0, 1.0])
    empty = reliability_bins([1], [0.95], bins=4)
    assert np.isnan(empty.confidence[:3]).all() and empty.counts.tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize(
    ("truth", "probs", "nll"),
    [([1, 0], [0.5, 0.5], np.log(2)), ([1], [1.0], -np.log1p(-1e-7)), ([0], [0.2], -np.log(0.8))],
)
def test_binary_nll(truth, probs, nll):
    assert binary_nll(truth, probs) == pytest.approx(nll, rel=1e-12)


def test_no_cases_and_mismatched_lengths():
    assert np.isnan(expected_calibration_error([], []))
    with pytest.raises(ValueError, match="y_true has 2 values, probs 1"):
        expected_calibration_error([0, 1], [0.5])


def test_cumulative_calibration_equals_the_whole_at_once():
    rng = np.random.default_rng(0)
    truth, probs = rng.integers(0, 2, 300), rng.random(300)
    metric = CumulativeCalibration(bins=10)
    for start in range(0, 300, 64):
        metric.add(truth[start : start + 64], probs[start : start + 64])
    assert metric.aggregate() == pytest.approx(expected_calibration_error(truth, probs, 10), abs=1e-12)
    metric.reset()
    assert np.isnan(metric.aggregate())
