"""The validation-case table: exact round trip, confident picks, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.report import confident_cases, read_case_table, write_case_table


def test_round_trip_keeps_every_value(tmp_path):
    path = tmp_path / "valid_predictions.csv"
    truth = np.array([[1, 0], [0, 1], [1, 1]])
    probs = np.array([[0.9, 0.125], [0.25, 0.75], [0.5, 1e-6]])
    write_case_table(path, ["a", "b,c", "d"], ["x", "y"], truth, probs, groups=["G1", "", "G2"], inputs=["p", "q", "r"])
    table = read_case_table(path)
    assert table.cases == ["a", "b,c", "d"] and table.labels == ["x", "y"]
    assert table.groups == ["G1", "", "G2"] and table.inputs == ["p", "q", "r"]
    np.testing.assert_array_equal(table.truth, truth)
    np.testing.assert_allclose(table.probs, probs, rtol=1e-6)
    assert path.read_text().splitlines()[0] == "case,group,input,true_x,true_y,prob_x,prob_y"


@pytest.mark.parametrize(
    ("probs", "truth", "right", "wrong"),
    [
        ([0.99, 0.6, 0.02, 0.45, 0.9], [1, 0, 0, 1, 0], [0, 2], [4, 1]),
        ([0.5, 0.5], [1, 0], [1], [0]),  # p == threshold is a negative call, with zero confidence
    ],
)
def test_confident_cases_orders_by_distance_from_the_threshold(tmp_path, probs, truth, right, wrong):
    path = tmp_path / "t.csv"
    n = len(probs)
    write_case_table(path, [str(i) for i in range(n)], ["y"], np.array(truth), np.array(probs))
    got_right, got_wrong = confident_cases(read_case_table(path), "y", 0.5, 2)
    assert got_right == right and got_wrong == wrong


@pytest.mark.parametrize("text", ["", "case,true_y\n1,0\n", "a,b\n1,2\n"])
def test_a_file_that_is_not_a_case_table_is_a_data_error(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(RadlabDataError, match=r"bad\.csv"):
        read_case_table(path)
