import json
import math

import numpy as np
import pytest

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


def test_a_very_negative_logit_gives_a_probability_not_an_overflow():
    """Finding 9: math.exp(-z) raised OverflowError below z = -709.78 (a logit of -71 with a coefficient of 10)."""
    logits, labels = _data()
    fusion = fit_fusion(logits, labels, ("abnormal", "acl", "meniscus"), PLANES, "train")
    fusion["tasks"]["abnormal"]["axial+coronal+sagittal"]["intercept"] = -1000.0
    one = {key: values[:1].copy() for key, values in logits.items()}
    probs, _ = apply_fusion(fusion, one, 1)
    assert np.isfinite(probs).all() and probs[0, 0] == 0.0


def _edited(fusion, edit):
    document = json.loads(json.dumps(fusion))
    edit(document)
    return document


EDITS = {
    "NaN coefficient": lambda f: f["tasks"]["acl"]["axial"].update(coef=[float("nan")]),
    "missing subset": lambda f: f["tasks"]["acl"].pop("axial+coronal+sagittal"),
    "text coefficient": lambda f: f["tasks"]["acl"]["axial"].update(coef="abc"),
    "two coefficients for one plane": lambda f: f["tasks"]["acl"]["axial"].update(coef=[1.0, 2.0]),
    "prevalence above 1": lambda f: f["prevalence"].update(acl=1.5),
    "unknown task": lambda f: f["tasks"].update(knee={}),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_a_damaged_fusion_file_is_one_line_naming_it(tmp_path, edit):
    """Finding 9: a NaN coefficient wrote `nan` into the submission; a missing key or a string gave a traceback."""
    from radlab.core.engine.run_dir import RunDir
    from radlab.core.errors import RadlabDataError
    from radlab.tasks.mrnet.model import FusionFile

    logits, labels = _data()
    fusion = fit_fusion(logits, labels, ("abnormal", "acl", "meniscus"), PLANES, "train")
    run = RunDir(tmp_path)
    (tmp_path / "fusion.json").write_text(json.dumps(_edited(fusion, edit)))  # NaN as the bare word NaN
    with pytest.raises(RadlabDataError, match=r"fusion\.json: "):
        run.read_json("fusion.json", FusionFile)
