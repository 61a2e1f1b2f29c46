"""`radlab bench infer --task mrnet`: the spec's keys, and both sides give the same fused probabilities."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.tasks.mura.test_bench import SPEC_KEYS


def test_bench_infer_json_has_the_spec_keys_and_both_sides_agree():
    result = run_cli(
        "bench", "infer", "--task", "mrnet", "--json", "--images", "3", "--repeats", "1", "--config", "cpu-small",
        "--set", "data.image_size=32", "--workers", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= SPEC_KEYS and (report["task"], report["exams"], report["networks"]) == ("mrnet", 3, 3)
    assert report["max_abs_prob_diff"] < 1e-4 and report["label_agreement"] == 1.0 and report["speedup"] > 0
    assert report["roofline"]["gflop_per_exam"] > 0


def test_an_engine_mrnet_has_not_is_one_line():
    result = run_cli("bench", "infer", "--task", "mrnet", "--engine", "onnx")
    assert result.returncode == 1 and "no ONNX export" in result.stderr and "Traceback" not in result.stderr
