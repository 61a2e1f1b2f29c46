"""`radlab bench prep|infer --task ich`: the plain reference and radlab agree (bytes, probabilities)."""

from __future__ import annotations

from radlab.tasks.ich.bench import bench_prep


def test_reference_and_radlab_preprocessing_agree():
    report = bench_prep(images=8, repeats=1, size=64)
    assert report["max_abs_grey_level_diff"] == 0 and report["label_agreement"] == 1.0
    assert report["reference_items_per_s"] > 0 and report["radlab_items_per_s"] > 0 and report["threads"] == 1


def test_bench_infer_reference_and_every_engine_agree_on_whole_series():
    import json

    from tests.conftest import run_cli
    from tests.tasks.mura.test_bench import SPEC_KEYS

    result = run_cli(
        "bench", "infer", "--task", "ich", "--json", "--images", "6", "--repeats", "1", "--config", "cpu-small",
        "--set", "data.image_size=32", "--workers", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= SPEC_KEYS and report["task"] == "ich" and report["slices"] >= 6
    assert report["max_abs_prob_diff"] < 1e-4 and report["label_agreement"] == 1.0
    engines = report["engines"]
    assert list(engines) == ["torch", "onnx", "int8"] and engines["onnx"]["max_abs_prob_diff"] < 1e-4
    assert engines["int8"]["max_abs_prob_diff"] < 0.1 and all(e["speedup"] > 0 for e in engines.values())
    assert report["tta"] == ["none", "hflip", "transpose"] and report["roofline"]["gflop_per_slice"] > 0
