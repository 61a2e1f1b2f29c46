"""Interleaved timing of a reference and a candidate on the same inputs.

Each repeat runs both, alternating which goes first, so drift in the machine's speed (other load, thermal
state, caches) falls on both sides; the speed-up is the median of the per-repeat ratios.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Comparison:
    """Items per second of both sides (medians), the median pairwise speed-up, and each side's last output."""

    reference_items_per_s: float
    radlab_items_per_s: float
    speedup: float
    repeats: int
    reference_output: Any
    radlab_output: Any


def _timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    output = run()
    return time.perf_counter() - started, output


def compare_interleaved(
    reference: Callable[[], Any], radlab: Callable[[], Any], items: int, repeats: int = 3, warmup: bool = True
) -> Comparison:
    """Run both `repeats` times, alternating the order; one untimed warm-up of each first when `warmup`."""
    if warmup:
        reference()
        radlab()
    ref_times, rad_times, ratios = [], [], []
    ref_out = rad_out = None
    for k in range(repeats):
        if k % 2 == 0:
            ref_s, ref_out = _timed(reference)
            rad_s, rad_out = _timed(radlab)
        else:
            rad_s, rad_out = _timed(radlab)
            ref_s, ref_out = _timed(reference)
        ref_times.append(ref_s)
        rad_times.append(rad_s)
        ratios.append(ref_s / rad_s)
    return Comparison(
        reference_items_per_s=items / statistics.median(ref_times),
        radlab_items_per_s=items / statistics.median(rad_times),
        speedup=statistics.median(ratios),
        repeats=repeats,
        reference_output=ref_out,
        radlab_output=rad_out,
    )


def peak_rss_mb() -> float:
    """The peak resident memory of this process or of its largest finished child (loader workers), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0
