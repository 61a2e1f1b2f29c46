"""The shared bench report: the first engine's line on top, every engine under "engines", the roofline per
unit; a scratch copy never carries training state."""

from __future__ import annotations

import pytest

from radlab.core.bench import Comparison, comparison_fields, infer_report, scratch_copy


def _comparison(ref: float, rad: float) -> Comparison:
    return Comparison(ref, rad, rad / ref, 3, None, None)


def test_report_puts_the_first_engine_on_top_and_every_engine_in_the_roofline(monkeypatch):
    monkeypatch.setattr("radlab.core.bench.report.matmul_peak_gflops", lambda device="cpu": 100.0)
    results = {
        "torch": comparison_fields(_comparison(2.0, 4.0), max_abs_prob_diff=0.0),
        "int8": comparison_fields(_comparison(2.0, 10.0), max_abs_prob_diff=0.01),
    }
    report = infer_report("demo", results, "exam", 5e9, exams=3)
    assert report["task"] == "demo" and report["engine"] == "torch" and report["exams"] == 3
    assert (report["reference_items_per_s"], report["radlab_items_per_s"], report["speedup"]) == (2.0, 4.0, 2.0)
    assert report["engines"] == results and {"peak_rss_mb", "threads", "device"} <= set(report)
    line = report["roofline"]
    assert line["gflop_per_exam"] == pytest.approx(5.0) and line["ceiling_exams_per_s"] == pytest.approx(20.0)
    assert line["fraction_of_peak"] == {"torch": pytest.approx(0.2), "int8": pytest.approx(0.5)}


def test_scratch_copy_leaves_training_state_and_old_exports_behind(tmp_path):
    run = tmp_path / "user-run"
    for name in ("config.yaml", "model.safetensors", "units/a/model.safetensors", "units/a/model.onnx",
                 "checkpoints/last.safetensors", "embeddings/train.npy"):  # fmt: skip
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(name)
    copy = scratch_copy(run, tmp_path / "scratch")
    kept = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    assert kept == ["config.yaml", "model.safetensors", "units/a/model.safetensors"]
    assert sorted(p.name for p in run.rglob("*.onnx")) == ["model.onnx"]  # the user's run is untouched
