"""`radlab bench infer --task pneumonia`: the spec's keys; both ways keep the same boxes with the same scores."""

from __future__ import annotations

from tests.tasks.mura.test_bench import SPEC_KEYS


def test_bench_prep_cached_epochs_give_the_same_pixels_and_boxes():
    from radlab.tasks.pneumonia.bench import bench_prep

    report = bench_prep(images=6, repeats=1, size=64)
    assert set(report) >= SPEC_KEYS and report["task"] == "pneumonia"
    assert report["identical_pixels"] is True and report["max_abs_box_diff_px"] < 1e-3
    assert report["plain_epoch"]["radlab_items_per_s"] > 0 and report["cache_build_items_per_s"] > 0
