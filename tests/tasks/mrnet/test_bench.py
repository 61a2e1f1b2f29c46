"""`radlab bench infer --task mrnet`: the spec's keys, and both sides give the same fused probabilities."""

from __future__ import annotations

from tests.conftest import run_cli


def test_an_unknown_engine_is_one_line():
    result = run_cli("bench", "infer", "--task", "mrnet", "--engine", "tensorrt")
    assert result.returncode == 1 and "unknown engine" in result.stderr and "Traceback" not in result.stderr
