"""`radlab bench infer|prep --task mura`: the spec's keys, agreement of both sides, identical cached pixels."""

from __future__ import annotations

import json

from tests.conftest import run_cli

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


def test_bench_infer_json_has_the_spec_keys_and_both_sides_agree():
    result = run_cli(
        "bench", "infer", "--task", "mura", "--json", "--images", "6", "--repeats", "1", "--config", "cpu-small",
        "--set", "data.image_size=32", "--engine", "torch", "--engine", "onnx", "--workers", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= SPEC_KEYS and report["task"] == "mura" and report["engine"] == "torch"
    assert set(report["engines"]) == {"torch", "onnx"}
    for engine in report["engines"].values():
        assert engine["max_abs_prob_diff"] < 1e-3 and engine["label_agreement"] == 1.0 and engine["speedup"] > 0
    assert report["roofline"]["gflop_per_image"] > 0 and report["roofline"]["matmul_peak_gflops"] > 0


def test_bench_prep_cached_epoch_gives_identical_pixels():
    from radlab.tasks.mura.bench import bench_prep

    report = bench_prep(images=12, repeats=1, size=32)
    assert set(report) >= SPEC_KEYS
    assert report["identical_pixels"] is True and report["speedup"] > 1.0
    assert report["plain_epoch"]["speedup"] > 1.0 and report["cache_build_items_per_s"] > 0
