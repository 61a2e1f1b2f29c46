"""`radlab bench prep|infer --task ich`: the plain reference and radlab agree (bytes, probabilities)."""

from __future__ import annotations

from radlab.tasks.ich.bench import bench_prep


def test_reference_and_radlab_preprocessing_agree():
    report = bench_prep(images=8, repeats=1, size=64)
    assert report["max_abs_grey_level_diff"] == 0 and report["label_agreement"] == 1.0
    assert report["reference_items_per_s"] > 0 and report["radlab_items_per_s"] > 0 and report["threads"] == 1
