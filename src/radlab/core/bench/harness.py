"""Interleaved timing of a reference and a candidate on the same inputs, and how much of the candidate's
time is spent outside its network.

Each repeat runs both, alternating which goes first, so drift in the machine's speed (other load, thermal
state, caches) falls on both sides; the speed-up is the median of the per-repeat ratios.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from torch import nn


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


def _modules(loaded: Any) -> Iterator[nn.Module]:
    """The nn.Modules in what a task's `load` returns (a module, or tuples, lists, dicts and dataclasses
    holding them: MRNet's and ICH's loaded runs are dataclasses)."""
    if isinstance(loaded, nn.Module):
        yield loaded
    elif isinstance(loaded, tuple | list):
        for item in loaded:
            yield from _modules(item)
    elif isinstance(loaded, dict):
        for item in loaded.values():
            yield from _modules(item)
    elif is_dataclass(loaded) and not isinstance(loaded, type):
        for item in fields(loaded):
            yield from _modules(getattr(loaded, item.name))


class ForwardTimer:
    """Wall time spent inside the networks of a loaded model, against the wall time of whole calls.

    Hooks on every network in `loaded` and on its direct children (a detector's predict calls its parts, not
    its forward) accumulate the time between entering the outermost of them and leaving it; nested calls count
    once. Whatever else a call does (reading, decoding, resizing, batching, writing) is outside the network.
    """

    def __init__(self, loaded: Any) -> None:
        self.calls: list[tuple[float, float]] = []  # (wall seconds, seconds inside the network) per call
        self._inside = 0.0
        self._depth = 0
        self._entered = 0.0
        seen: dict[int, nn.Module] = {}
        for network in _modules(loaded):
            for module in (network, *network.children()):
                seen.setdefault(id(module), module)
        self._handles = [h for m in seen.values() for h in (m.register_forward_pre_hook(self._enter),
                                                              m.register_forward_hook(self._leave))]  # fmt: skip

    def _enter(self, module: nn.Module, args: Any) -> None:
        if self._depth == 0:
            self._entered = time.perf_counter()
        self._depth += 1

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._inside += time.perf_counter() - self._entered

    def wrap(self, run: Callable[[], Any]) -> Callable[[], Any]:
        """`run`, recording each call's wall time and the time its networks took."""

        def timed() -> Any:
            self._inside, self._depth = 0.0, 0
            wall, output = _timed(run)
            self.calls.append((wall, self._inside))
            return output

        return timed

    def outside_fraction(self, skip: int = 0) -> float | None:
        """The fraction of the wall time of the calls after the first `skip` (a warm-up) spent outside the
        networks; None before any such call."""
        calls = self.calls[skip:]
        wall = sum(w for w, _ in calls)
        return None if wall <= 0 else max(0.0, 1.0 - sum(i for _, i in calls) / wall)

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
