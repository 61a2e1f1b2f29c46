"""`radlab bench infer --task pneumonia`: the spec's keys; both ways keep the same boxes with the same scores."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.tasks.mura.test_bench import SPEC_KEYS


def test_bench_infer_reference_and_every_engine_keep_the_same_boxes():
    result = run_cli(
        "bench", "infer", "--task", "pneumonia", "--json", "--images", "3", "--repeats", "1", "--config", "cpu-small",
        "--set", "data.image_size=128", "--workers", "0", "--engine", "torch", "--engine", "onnx",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= SPEC_KEYS and (report["task"], report["images"]) == ("pneumonia", 3)
    assert report["boxes_kept"] > 0  # something to compare
    assert report["label_agreement"] == 1.0 and report["max_abs_prob_diff"] <= 1e-4
    assert report["max_abs_box_diff_px"] <= 0.1 and report["roofline"]["gflop_per_image"] > 0
    engines = report["engines"]
    assert list(engines) == ["torch", "onnx"] and engines["onnx"]["boxes_kept"] == report["boxes_kept"]
    assert engines["onnx"]["label_agreement"] == 1.0 and engines["onnx"]["max_abs_prob_diff"] <= 2e-4


def test_bench_prep_cached_epochs_give_the_same_pixels_and_boxes():
    from radlab.tasks.pneumonia.bench import bench_prep

    report = bench_prep(images=6, repeats=1, size=64)
    assert set(report) >= SPEC_KEYS and report["task"] == "pneumonia"
    assert report["identical_pixels"] is True and report["max_abs_box_diff_px"] < 1e-3
    assert report["plain_epoch"]["radlab_items_per_s"] > 0 and report["cache_build_items_per_s"] > 0
