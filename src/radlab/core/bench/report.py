"""The JSON a `radlab bench infer` prints, built one way for every task: each engine's ratio and agreement,
the spec's keys for the first engine, the machine, and the roofline (shared/spec/cli.md)."""

from __future__ import annotations

import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from radlab.core.bench.harness import Comparison, compare_interleaved, peak_rss_mb
from radlab.core.bench.roofline import matmul_peak_gflops, roofline


def comparison_fields(comparison: Comparison, **agreement: Any) -> dict[str, Any]:
    """One comparison's fields: items per second of both sides, the median pairwise speed-up, its agreement."""
    return {
        "reference_items_per_s": comparison.reference_items_per_s,
        "radlab_items_per_s": comparison.radlab_items_per_s,
        "speedup": comparison.speedup,
        **agreement,
    }


def machine(device: str = "cpu") -> dict[str, Any]:
    """Where it ran: peak memory so far, torch's threads, the CPU (or the GPU, for "cuda")."""
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine()
    return {"peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads(), "device": f"{device} ({name})"}


def infer_report(
    task: str,
    results: dict[str, dict[str, Any]],
    unit: str,
    flop_per_item: float,
    device: str = "cpu",
    **details: Any,
) -> dict[str, Any]:
    """The whole report: the first engine's line at the top level (the spec's keys), every engine under
    "engines", `details` (inputs, model, loader), the machine, and the roofline per `unit` (image, exam...)
    against `device`'s fp32 matmul peak."""
    engine, main = next(iter(results.items()))
    peak = matmul_peak_gflops(device=device)
    line = roofline(flop_per_item, main["radlab_items_per_s"], peak)
    return {
        "task": task,
        "engine": engine,
        **main,
        "engines": results,
        **details,
        **machine(device),
        "roofline": {
            f"gflop_per_{unit}": line.gflop_per_item,
            "matmul_peak_gflops": line.matmul_peak_gflops,
            f"ceiling_{unit}s_per_s": line.ceiling_items_per_s,
            "fraction_of_peak": {e: r["radlab_items_per_s"] * line.gflop_per_item / peak for e, r in results.items()},
        },
    }


def scratch_copy(run_dir: Path, scratch: Path) -> Path:
    """A copy of a user's run to export engines into (a benchmark never writes into the run it is given);
    training state and caches are left behind."""
    target = scratch / "run"
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("checkpoints", "embeddings", "*.onnx", "*.nncf.*"))
    return target


def cache_epochs(
    decode: Callable[[bool], Any], cached: Callable[[bool], Any], items: int, repeats: int
) -> tuple[Comparison, Comparison]:
    """`bench prep`'s two measurements, each interleaved: a training epoch (`decode(True)`, decoding every
    file as the seeds do, against `cached(True)`, radlab's cache, both augmenting) and a plain epoch (False)."""
    training = compare_interleaved(lambda: decode(True), lambda: cached(True), items=items, repeats=repeats)
    plain = compare_interleaved(lambda: decode(False), lambda: cached(False), items=items, repeats=repeats)
    return training, plain


def cache_report(
    task: str,
    what: str,
    epochs: tuple[Comparison, Comparison],
    items_per_s_built: float,
    identical: bool,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON `bench prep` prints: the training epoch's ratio (the spec's keys), the plain epoch's, how fast
    the cache was built, whether both ways gave identical pixels, the task's `extra`, the machine."""
    training, plain = epochs
    return {
        "task": task,
        "what": what,
        **comparison_fields(training),
        "plain_epoch": comparison_fields(plain),
        "cache_build_items_per_s": items_per_s_built,
        "max_abs_prob_diff": 0.0 if identical else None,
        "label_agreement": 1.0 if identical else None,
        "identical_pixels": identical,
        **extra,
        **machine(),
    }
