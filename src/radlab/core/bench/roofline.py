"""How far from the machine's ceiling a model runs: its FLOPs against a measured matmul rate."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Roofline:
    """FLOPs per item, the measured fp32 matmul peak, the ceiling it implies and the fraction reached."""

    gflop_per_item: float
    matmul_peak_gflops: float
    ceiling_items_per_s: float
    fraction_of_peak: float


def model_flops(model: nn.Module, example: torch.Tensor) -> float:
    """FLOPs of one forward pass on `example` (a multiply-add counts 2), by torch's flop counter."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example)
    return float(counter.get_total_flops())


def matmul_peak_gflops(size: int = 1024, seconds: float = 1.0) -> float:
    """The fp32 matrix-multiply rate of this machine with torch's current thread count (best of a few runs)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2.0 * size**3 / (time.perf_counter() - started))
    return best / 1e9


def roofline(flop_per_item: float, items_per_s: float, peak_gflops: float) -> Roofline:
    gflop = flop_per_item / 1e9
    return Roofline(gflop, peak_gflops, peak_gflops / gflop, gflop * items_per_s / peak_gflops)
