"""`radlab bench prep --task mura`: the spec's keys, identical cached pixels, the cache faster."""

from __future__ import annotations

SPEC_KEYS = {
    "task",
    "reference_items_per_s",
    "radlab_items_per_s",
    "speedup",
    "max_abs_prob_diff",
    "label_agreement",
    "peak_rss_mb",
    "threads",
    "device",
}


def test_bench_prep_cached_epoch_gives_identical_pixels():
    from radlab.tasks.mura.bench import bench_prep

    report = bench_prep(images=12, repeats=1, size=32)
    assert set(report) >= SPEC_KEYS
    assert report["identical_pixels"] is True and report["speedup"] > 1.0
    assert report["plain_epoch"]["speedup"] > 1.0 and report["cache_build_items_per_s"] > 0
