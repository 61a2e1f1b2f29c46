import json
import math

import numpy as np

from radlab.tasks.mrnet.formats import PLANES
from radlab.tasks.mrnet.model import apply_fusion, fit_fusion


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, (n, 3))
    logits = {}
    for k, task in enumerate(("abnormal", "acl", "meniscus")):
        for plane in PLANES:
            signal = 3.0 if plane == "sagittal" else 0.3
            logits[(task, plane)] = labels[:, k] * signal + rng.normal(0, 1, n)
    return logits, labels


def test_one_regression_per_plane_subset_as_plain_json():
    logits, labels = _data()
    fusion = fit_fusion(logits, labels, ("abnormal", "acl", "meniscus"), PLANES, "train")
    assert sorted(fusion["tasks"]["acl"]) == sorted(
        [
            "axial+coronal+sagittal",
            "axial+coronal",
            "axial+sagittal",
            "coronal+sagittal",
            "axial",
            "coronal",
            "sagittal",
        ]
    )
    assert json.loads(json.dumps(fusion)) == fusion
    coef = fusion["tasks"]["acl"]["axial+coronal+sagittal"]["coef"]
    assert coef[2] > abs(coef[0]) and coef[2] > abs(coef[1])  # the informative plane dominates


def test_a_missing_plane_uses_the_regression_of_the_planes_present():
    logits, labels = _data()
    fusion = fit_fusion(logits, labels, ("abnormal", "acl", "meniscus"), PLANES, "train")
    one = {key: values[:1].copy() for key, values in logits.items()}
    for task in ("abnormal", "acl", "meniscus"):
        one[(task, "coronal")][0] = np.nan
    probs, usable = apply_fusion(fusion, one, 1)
    model = fusion["tasks"]["acl"]["axial+sagittal"]
    z = (
        model["intercept"]
        + model["coef"][0] * one[("acl", "axial")][0]
        + model["coef"][1] * one[("acl", "sagittal")][0]
    )
    assert usable.tolist() == [True]
    assert math.isclose(probs[0, 1], 1 / (1 + math.exp(-z)), rel_tol=1e-12)


def test_no_usable_plane_or_untrained_task_gives_the_prevalence():
    logits, labels = _data()
    fusion = fit_fusion(logits, labels, ("acl",), PLANES, "train")
    empty = {key: np.array([np.nan]) for key in logits}
    probs, usable = apply_fusion(fusion, empty, 1)
    assert usable.tolist() == [False]
    assert probs[0].tolist() == [fusion["prevalence"][t] for t in ("abnormal", "acl", "meniscus")]


def test_a_single_class_fits_a_constant():
    logits, labels = _data()
    labels[:, 1] = 0
    fusion = fit_fusion(logits, labels, ("acl",), PLANES, "train")
    assert fusion["tasks"]["acl"]["sagittal"]["coef"] == [0.0]
