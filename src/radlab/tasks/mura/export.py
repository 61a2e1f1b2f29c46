"""`radlab export` for MURA: RUN/model.onnx, and with int8 RUN/model.int8.onnx calibrated on training images.

The validation split is then predicted by each engine exactly as `predict` would, and the change of the
official kappa (and the largest probability difference) is reported and kept in RUN/export.json.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core.engine.run_dir import RunDir
from radlab.core.infer.export import ExportPart, compare_engines, export_parts, exported_engines, readable_batches
from radlab.core.io.dataset import ImageFileDataset
from radlab.core.transforms import build_image_transform
from radlab.tasks.mura.evaluate import evaluate_files
from radlab.tasks.mura.formats import read_image_paths, read_probabilities, resolve_data_root, split_csvs
from radlab.tasks.mura.model import load_model
from radlab.tasks.mura.predict import predict_csv


def _data_root(run: RunDir, data_root: str | Path | None) -> Path:
    return resolve_data_root(run.data_root(data_root, "data_stats.json"))


def calibration_batches(
    root: Path, size: int, resize: str, count: int, seed: int = 0, batch: int = 8
) -> Iterator[np.ndarray]:
    """`count` training images (a seeded draw), decoded and resized as predict does, as float32 batches."""
    paths_csv, _ = split_csvs(root, "train")
    images = read_image_paths(paths_csv)
    chosen = np.random.default_rng(seed).permutation(len(images))[:count]
    transform = build_image_transform(size, resize=resize)
    dataset = ImageFileDataset([root / images[i].path for i in sorted(chosen)], transform, transform.output_shape)
    return readable_batches(dataset, batch)


def export(
    run_dir: str | Path,
    *,
    int8: bool = False,
    calibration: int = 64,
    data_root: str | Path | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Write the ONNX file(s) and return what RUN/export.json records; `validate` compares the engines
    on held-out data when the training data is known (--int8 or --data-root)."""
    run = RunDir(Path(run_dir))
    config, model = load_model(run.root)
    size = config.data.image_size
    root = _data_root(run, data_root) if int8 or data_root is not None else None

    def calibrate(count: int):
        return calibration_batches(root, size, config.data.resize, count, config.train.seed)

    part = ExportPart(run.root, model, torch.rand(2, 1, size, size) * 255, calibrate)
    report = export_parts(run.root, [part], int8=int8, calibration=calibration)
    if root is not None and validate:
        report["validation"] = validate_engines(run, root, exported_engines(report))
    run.write_json("export.json", report)
    return report


def validate_engines(run: RunDir, root: Path, engines: list[str]) -> dict[str, Any]:
    """Predict the validation split with each engine; kappa, and the probability change against torch."""
    paths_csv, labels_csv = split_csvs(root, "valid")
    with tempfile.TemporaryDirectory() as scratch:

        def predict(engine: str) -> tuple[float | None, np.ndarray]:
            out, probs = Path(scratch) / f"{engine}.csv", Path(scratch) / f"{engine}.probs.csv"
            predict_csv(paths_csv, out, run.root, root, probabilities_csv=probs, engine=engine, num_workers=0)
            official, _ = evaluate_files(labels_csv, out)
            return official["Overall_Mean"], np.array([row.probability for row in read_probabilities(probs)])

        return compare_engines(engines, predict, "kappa")
