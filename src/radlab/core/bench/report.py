"""The JSON a `radlab bench infer` prints, built one way for every task: each engine's ratio and agreement,
the spec's keys for the first engine, the machine, and the roofline (shared/spec/cli.md)."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path
from typing import Any

import torch

from radlab.core.bench.harness import Comparison, peak_rss_mb
from radlab.core.bench.roofline import matmul_peak_gflops, roofline


def comparison_fields(comparison: Comparison, **agreement: Any) -> dict[str, Any]:
    """One comparison's fields: items per second of both sides, the median pairwise speed-up, its agreement."""
    return {
        "reference_items_per_s": comparison.reference_items_per_s,
        "radlab_items_per_s": comparison.radlab_items_per_s,
        "speedup": comparison.speedup,
        **agreement,
    }


def machine() -> dict[str, Any]:
    """Where it ran: peak memory so far, torch's threads, the CPU."""
    return {
        "peak_rss_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "device": f"cpu ({platform.processor() or platform.machine()})",
    }


def infer_report(
    task: str, results: dict[str, dict[str, Any]], unit: str, flop_per_item: float, **details: Any
) -> dict[str, Any]:
    """The whole report: the first engine's line at the top level (the spec's keys), every engine under
    "engines", `details` (inputs, model, loader), the machine, and the roofline per `unit` (image, exam...)."""
    engine, main = next(iter(results.items()))
    peak = matmul_peak_gflops()
    line = roofline(flop_per_item, main["radlab_items_per_s"], peak)
    return {
        "task": task,
        "engine": engine,
        **main,
        "engines": results,
        **details,
        **machine(),
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
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("checkpoints", "embeddings", "*.onnx"))
    return target
