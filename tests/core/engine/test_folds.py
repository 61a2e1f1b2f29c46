"""K-fold splits: every item held out once, patients never split, too few patients refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from radlab.core.engine.folds import stratified_folds
from radlab.core.errors import RadlabConfigError


@pytest.mark.parametrize("grouped", [False, True])
def test_every_item_is_held_out_once_and_patients_stay_whole(grouped):
    labels = np.array([0, 1] * 15)
    groups = np.repeat(np.arange(10), 3) if grouped else None
    folds = stratified_folds(labels, 5, seed=1, groups=groups)
    held_out = np.concatenate([b for _, b in folds])
    assert sorted(held_out.tolist()) == list(range(30))
    for kept, out in folds:
        assert not set(kept) & set(out)
        if grouped:
            assert not set(groups[kept]) & set(groups[out])


@pytest.mark.parametrize(
    ("items", "groups", "kind"), [(3, None, "3 items"), (12, np.repeat([0, 1, 2], 4), "3 patients")]
)
def test_fewer_units_than_folds_is_one_line(items, groups, kind):
    with pytest.raises(RadlabConfigError, match=f"only {kind}: too few to split into 5 folds"):
        stratified_folds(np.arange(items) % 2, 5, groups=groups)
