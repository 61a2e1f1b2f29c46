"""The benchmark harness: interleaved order, median ratios, FLOPs that match a hand count."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from radlab.core.bench import compare_interleaved, model_flops, peak_rss_mb, roofline


def test_interleaving_alternates_order_and_keeps_the_outputs():
    calls = []

    def reference():
        calls.append("ref")
        time.sleep(0.02)
        return "r"

    def candidate():
        calls.append("rad")
        time.sleep(0.01)
        return "c"

    result = compare_interleaved(reference, candidate, items=10, repeats=3)
    assert calls == ["ref", "rad", "ref", "rad", "rad", "ref", "ref", "rad"]  # warm-up, then ABBAAB
    assert result.speedup > 1.2 and result.reference_output == "r" and result.radlab_output == "c"
    assert result.radlab_items_per_s > result.reference_items_per_s


def test_flops_of_a_linear_layer_and_the_roofline_arithmetic():
    layer = nn.Linear(100, 10, bias=False)
    assert model_flops(layer, torch.zeros(4, 100)) == 2 * 4 * 100 * 10
    line = roofline(2e9, items_per_s=5.0, peak_gflops=40.0)
    assert line.ceiling_items_per_s == pytest.approx(20.0) and line.fraction_of_peak == pytest.approx(0.25)
    assert peak_rss_mb() > 10
