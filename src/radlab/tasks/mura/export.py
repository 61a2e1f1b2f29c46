"""`radlab export` for MURA: RUN/model.onnx, and with int8 RUN/model.int8.onnx calibrated on training images.

The validation split is then predicted by each engine exactly as `predict` would, and the change of the
official kappa (and the largest probability difference) is reported and kept in RUN/export.json.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core.console import info
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.infer import iterate_batches
from radlab.core.infer.onnx import export_onnx, quantize_int8
from radlab.core.io.dataset import ImageFileDataset
from radlab.core.transforms import build_image_transform
from radlab.tasks.mura.evaluate import evaluate_files
from radlab.tasks.mura.formats import read_image_paths, read_probabilities, resolve_data_root, split_csvs
from radlab.tasks.mura.model import load_model
from radlab.tasks.mura.predict import predict_csv


def _data_root(run: RunDir, data_root: str | Path | None) -> Path:
    if data_root is not None:
        return resolve_data_root(data_root)
    recorded = run.read_json("data_stats.json").get("data_root") if run.file("data_stats.json").is_file() else None
    if not recorded:
        raise RadlabDataError(run.root, "does not record its training data; pass --data-root")
    return resolve_data_root(recorded)


def calibration_batches(root: Path, size: int, resize: str, count: int, seed: int = 0, batch: int = 8):
    """`count` training images (a seeded draw), decoded and resized as predict does, as float32 batches."""
    paths_csv, _ = split_csvs(root, "train")
    images = read_image_paths(paths_csv)
    chosen = np.random.default_rng(seed).permutation(len(images))[:count]
    transform = build_image_transform(size, resize=resize)
    dataset = ImageFileDataset([root / images[i].path for i in sorted(chosen)], transform, transform.output_shape)
    for item in iterate_batches(dataset, batch_size=batch, num_workers=0, description="calibrating"):
        readable = [k for k, error in enumerate(item["error"]) if not error]
        if readable:
            yield item["image"][readable].float().numpy()


def export(
    run_dir: str | Path, *, int8: bool = False, calibration: int = 64, data_root: str | Path | None = None
) -> dict[str, Any]:
    """Write the ONNX file(s) and return what RUN/export.json records."""
    run = RunDir(Path(run_dir))
    config, model = load_model(run.root)
    size = config.data.image_size
    example = torch.rand(2, 1, size, size) * 255
    export_onnx(model, example, run.file("model.onnx"))
    info(f"wrote {run.file('model.onnx')}")
    report: dict[str, Any] = {"opset": 17, "files": ["model.onnx"]}
    if int8:
        root = _data_root(run, data_root)
        batches = calibration_batches(root, size, config.data.resize, calibration, config.train.seed)
        quantize_int8(run.file("model.onnx"), run.file("model.int8.onnx"), batches)
        report["files"].append("model.int8.onnx")
        report["calibration_images"] = calibration
        info(f"wrote {run.file('model.int8.onnx')} (static int8, calibrated on {calibration} training images)")
    if int8 or data_root is not None:
        report["validation"] = compare_engines(run, _data_root(run, data_root), ["torch", *report_engines(report)])
    run.write_json("export.json", report)
    return report


def report_engines(report: dict[str, Any]) -> list[str]:
    return ["onnx"] + (["int8"] if "model.int8.onnx" in report["files"] else [])


def compare_engines(run: RunDir, root: Path, engines: list[str]) -> dict[str, Any]:
    """Predict the validation split with each engine; kappa, and the probability change against torch."""
    paths_csv, labels_csv = split_csvs(root, "valid")
    results: dict[str, Any] = {}
    reference: np.ndarray | None = None
    with tempfile.TemporaryDirectory() as scratch:
        for engine in engines:
            out, probs = Path(scratch) / f"{engine}.csv", Path(scratch) / f"{engine}.probs.csv"
            predict_csv(paths_csv, out, run.root, root, probabilities_csv=probs, engine=engine, num_workers=0)
            official, _ = evaluate_files(labels_csv, out)
            values = np.array([row.probability for row in read_probabilities(probs)])
            entry = {"kappa": official["Overall_Mean"]}
            if reference is None:
                reference = values
            else:
                entry["max_abs_prob_diff"] = float(np.abs(values - reference).max())
                entry["kappa_change"] = (
                    None
                    if entry["kappa"] is None or results["torch"]["kappa"] is None
                    else entry["kappa"] - results["torch"]["kappa"]
                )
            results[engine] = entry
            info(f"  {engine}: validation kappa {entry['kappa']}" + _diff(entry))
    return results


def _diff(entry: dict[str, Any]) -> str:
    if "max_abs_prob_diff" not in entry:
        return ""
    return f", max |dp| {entry['max_abs_prob_diff']:.2g} against torch"
