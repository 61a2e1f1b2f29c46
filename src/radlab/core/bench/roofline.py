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


def matmul_peak_gflops(size: int | None = None, seconds: float = 1.0, device: str = "cpu") -> float:
    """The fp32 matrix-multiply rate of `device` (best of the runs that fit in `seconds`): on the CPU with
    torch's current thread count, 1024 x 1024; on a GPU 8192 x 8192, synchronised, in PyTorch's default fp32
    (no TF32)."""
    size = size or (8192 if device == "cuda" else 1024)
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.mm(a, b)
    sync()
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = max(best, 2.0 * size**3 / (time.perf_counter() - started))
    return best / 1e9


def roofline(flop_per_item: float, items_per_s: float, peak_gflops: float) -> Roofline:
    gflop = flop_per_item / 1e9
    return Roofline(gflop, peak_gflops, peak_gflops / gflop, gflop * items_per_s / peak_gflops)
