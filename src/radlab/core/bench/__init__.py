"""Measuring radlab against a reference implementation in the same run: ratios, not absolute timings."""

from radlab.core.bench.harness import Comparison, ForwardTimer, compare_interleaved, peak_rss_mb
from radlab.core.bench.report import comparison_fields, infer_report, machine, scratch_copy
from radlab.core.bench.roofline import Roofline, matmul_peak_gflops, model_flops, roofline

__all__ = [
    "Comparison",
    "ForwardTimer",
    "Roofline",
    "compare_interleaved",
    "comparison_fields",
    "infer_report",
    "machine",
    "matmul_peak_gflops",
    "model_flops",
    "peak_rss_mb",
    "roofline",
    "scratch_copy",
]
