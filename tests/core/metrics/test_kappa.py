import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from radlab.core.metrics import cohen_kappa, kappa_with_official_interval


def test_hand_worked_case():
    # tn=2 fp=0 fn=1 tp=1: p_o = 0.75, p_e = (2*3 + 2*1)/16 = 0.5, kappa = 0.5,
    # official half-width = 1.96 * 0.75*0.25 / (4 * 0.25) = 0.3675 (no square root)
    kappa, lower, upper = kappa_with_official_interval([1, 1, 0, 0], [1, 0, 0, 0])
    assert kappa == pytest.approx(0.5, abs=1e-15)
    assert lower == pytest.approx(0.5 - 0.3675, abs=1e-15)
    assert upper == pytest.approx(0.5 + 0.3675, abs=1e-15)


@pytest.mark.parametrize("seed", range(10))
def test_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 200)
    pred = np.where(rng.random(200) < 0.7, truth, 1 - truth)
    assert abs(cohen_kappa(truth, pred) - cohen_kappa_score(truth, pred)) < 1e-12


@pytest.mark.parametrize(("truth", "pred"), [([], []), ([1, 1], [1, 1]), ([0, 0, 0], [0, 0, 0])])
def test_undefined_kappa_is_nan(truth, pred):
    assert all(math.isnan(v) for v in kappa_with_official_interval(truth, pred))


def test_perfect_agreement_has_zero_width():
    assert tuple(kappa_with_official_interval([0, 1, 0, 1], [0, 1, 0, 1])) == (1.0, 1.0, 1.0)
