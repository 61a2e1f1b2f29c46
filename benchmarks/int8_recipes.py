"""Which int8 recipe pays: each calibration method and choice of float layers, on one network, in one run.

For a task's `paper` network (fresh seeded weights; MURA's DenseNet-169 at 320 px by default): export it as
radlab does, quantise it with every recipe (`radlab export --int8 --int8-method M --int8-keep-float K`) on the
same synthetic calibration images, and time each int8 file under OpenVINO against the fp32 file under
OpenVINO, interleaved, the network alone (one infer request per image, as predict runs it). Prints one JSON
line per recipe: the speed-up over fp32 (median of the per-repeat ratios), the largest change of a sigmoid
probability against fp32 on held-out synthetic images, and the seconds quantisation took. What the recipes do
to the official metric of a trained run is `radlab export RUN --int8 ...`'s export.json (benchmarks/README.md).

    python benchmarks/int8_recipes.py [--task mura] [--calibration 16] [--images 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from radlab.core.bench.spec import fresh_bench_run
from radlab.core.infer.onnx import INT8_METHODS, KEEP_FLOAT, export_onnx, quantize_int8
from radlab.core.infer.openvino import OpenVinoModel
from radlab.core.task import get_task


def _network(task_name: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The task's paper classifier with seeded fresh weights, and the shape of one image."""
    task = get_task(task_name)
    config = task.load_config("paper", ["model.pretrained=false"])
    spec = task.bench.get()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        run = fresh_bench_run(spec, Path(scratch) / "run", config, 0)
        loaded = task.load.get()(run)
    model = loaded[1] if isinstance(loaded, tuple) else loaded
    size = config.data.image_size
    channels = int(next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d)).in_channels)
    return model.eval(), (channels, size, size)


def _rate(model: OpenVinoModel, pixels: torch.Tensor) -> float:
    started = time.perf_counter()
    model(pixels)
    return len(pixels) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mura", help="a task whose paper network is one classifier (mura, toy)")
    parser.add_argument("--calibration", type=int, default=16)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model, shape = _network(args.task)
    rng = np.random.default_rng(0)
    calibration = [rng.uniform(0, 255, (1, *shape)).astype(np.float32) for _ in range(args.calibration)]
    pixels = torch.from_numpy(rng.uniform(0, 255, (args.images, *shape)).astype(np.float32))
    with tempfile.TemporaryDirectory(prefix="radlab-int8-") as scratch_name:
        scratch = Path(scratch_name)
        fp32_path = export_onnx(model, pixels[:1], scratch / "model.onnx")
        fp32 = OpenVinoModel(fp32_path, one_image=True)
        reference = torch.sigmoid(fp32(pixels))
        for method, keep_float in itertools.product(INT8_METHODS, KEEP_FLOAT):
            started = time.perf_counter()
            path = quantize_int8(fp32_path, scratch / f"{method}-{keep_float}.onnx", calibration, method, keep_float)
            seconds = time.perf_counter() - started
            int8 = OpenVinoModel(path, engine="openvino-int8")
            int8(pixels[:2]), fp32(pixels[:2])  # warm-up
            ratios = []
            for repeat in range(args.repeats):
                first, second = (fp32, int8) if repeat % 2 == 0 else (int8, fp32)
                rates = {id(first): _rate(first, pixels), id(second): _rate(second, pixels)}
                ratios.append(rates[id(int8)] / rates[id(fp32)])
            change = float((torch.sigmoid(int8(pixels)) - reference).abs().max())
            line = {
                "task": args.task,
                "method": method,
                "keep_float": keep_float,
                "speedup_over_openvino_fp32": statistics.median(ratios),
                "max_abs_prob_diff": change,
                "quantise_seconds": round(seconds, 1),
                "calibration_images": args.calibration,
            }
            print(json.dumps(line), flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
