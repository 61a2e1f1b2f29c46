"""The benchmark harness: interleaved order, median ratios, FLOPs that match a hand count."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from radlab.core.bench import compare_interleaved, model_flops, peak_rss_mb, roofline
from radlab.core.bench.harness import ForwardTimer


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


class _Clock:
    """A fake perf_counter that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Network(nn.Module):
    """A network whose forward takes 3 fake seconds, through a child that is timed too (counted once)."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock
        self.part = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.now += 3.0
        return self.part(x)


@dataclass
class _Loaded:
    """A loaded run as MRNet's: a dataclass holding its networks."""

    config: str
    units: dict[str, nn.Module]


def test_the_forward_timer_finds_the_networks_of_a_dataclass_run(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("radlab.core.bench.harness.time.perf_counter", clock)
    network = _Network(clock)
    timer = ForwardTimer(_Loaded("config", {"sagittal": network}))
    timer.wrap(lambda: network(torch.zeros(1)))()
    assert timer.calls == [(3.0, 3.0)] and timer.outside_fraction() == 0.0  # MRNet read 100 % outside before


def test_the_forward_timer_counts_nested_networks_once_and_skips_the_warm_up(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("radlab.core.bench.harness.time.perf_counter", clock)
    network = _Network(clock)
    timer = ForwardTimer(("config", {"unit": network}, [network], _Loaded("config", {"unit": network})))

    def predict() -> torch.Tensor:
        clock.now += 1.0  # reading and decoding
        return network(torch.zeros(1))

    timed = timer.wrap(predict)
    timed()
    clock.now += 100.0  # the reference's turn, between radlab's calls: not counted
    timed()
    assert timer.calls == [(4.0, 3.0), (4.0, 3.0)]
    assert timer.outside_fraction(skip=1) == pytest.approx(0.25) and timer.outside_fraction(skip=2) is None
    timer.close()
    timed()
    assert timer.calls[-1] == (4.0, 0.0)  # no hooks left


def test_the_forward_timer_times_the_parts_a_predict_calls_directly(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("radlab.core.bench.harness.time.perf_counter", clock)
    outer = nn.Sequential(_Network(clock))
    timer = ForwardTimer(outer)
    timer.wrap(lambda: outer[0](torch.zeros(1)))()  # a detector's predict calls its parts, not its forward
    assert timer.calls == [(3.0, 3.0)] and timer.outside_fraction() == 0.0
