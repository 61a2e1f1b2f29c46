"""`radlab bench infer --task mrnet`: the spec's keys, and both sides give the same fused probabilities."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.tasks.mura.test_bench import SPEC_KEYS


def test_bench_infer_json_has_the_spec_keys_and_every_engine_agrees():
    result = run_cli(
        "bench", "infer", "--task", "mrnet", "--json", "--images", "3", "--repeats", "1", "--config", "cpu-small",
        "--set", "data.image_size=32", "--workers", "0", "--engine", "torch", "--engine", "onnx",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= SPEC_KEYS and (report["task"], report["exams"], report["networks"]) == ("mrnet", 3, 3)
    assert report["engine"] == "torch" and list(report["engines"]) == ["torch", "onnx"]  # int8: test_export
    engines = report["engines"]
    assert engines["torch"]["max_abs_prob_diff"] < 1e-4 and engines["onnx"]["max_abs_prob_diff"] < 1e-4
    assert all(e["speedup"] > 0 for e in engines.values()) and engines["torch"]["label_agreement"] == 1.0
    assert report["roofline"]["gflop_per_exam"] > 0 and set(report["roofline"]["fraction_of_peak"]) == set(engines)


def test_an_unknown_engine_is_one_line():
    result = run_cli("bench", "infer", "--task", "mrnet", "--engine", "tensorrt")
    assert result.returncode == 1 and "unknown engine" in result.stderr and "Traceback" not in result.stderr
