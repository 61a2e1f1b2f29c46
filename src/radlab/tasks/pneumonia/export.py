"""`radlab export` for RSNA Pneumonia: the detector's network (backbone, FPN, RetinaNet head, global head) as
RUN/model.onnx (and model.int8.onnx calibrated on training images), with the level sizes in its metadata;
anchors, decoding and NMS stay in PyTorch. With --int8 or --data-root, the run's held-out images (up to
`VALIDATION_IMAGES`) are predicted by each engine as `predict` would, and the change of the official mAP is
kept in RUN/export.json.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core.engine.run_dir import RunDir
from radlab.core.infer.export import ExportPart, compare_engines, export_parts, exported_engines, readable_batches
from radlab.core.io.atomic import atomic_write_text
from radlab.tasks.pneumonia.data import DetectionTransform, DicomBoxDataset, collate_detection
from radlab.tasks.pneumonia.evaluate import evaluate_files
from radlab.tasks.pneumonia.formats import (
    LABELS_HEADER,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    read_box_labels,
    read_submission,
)
from radlab.tasks.pneumonia.model import DenseDetector, export_metadata, load_detector
from radlab.tasks.pneumonia.predict import predict_folder
from radlab.tasks.pneumonia.train import resolve_data_root

VALIDATION_IMAGES = 256


def calibration_batches(
    root: Path, ids: Sequence[str], size: int, count: int, seed: int, batch: int = 4
) -> Iterator[np.ndarray]:
    """`count` training images (a seeded draw among `ids`), decoded and resized as predict does, as float32
    batches; unreadable images are left out."""
    chosen = sorted(np.random.default_rng(seed).permutation(len(ids))[:count])
    dataset = DicomBoxDataset([root / TRAIN_IMAGES / f"{ids[i]}.dcm" for i in chosen], DetectionTransform(size))
    return readable_batches(dataset, batch, collate_detection)


def export(
    run_dir: str | Path,
    *,
    int8: bool = False,
    calibration: int = 64,
    data_root: str | Path | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Write the detector's ONNX file(s) and return what RUN/export.json records; `validate` compares the engines
    on held-out data when the training data is known (--int8 or --data-root)."""
    run = RunDir(Path(run_dir))
    config, detector = load_detector(run.root)
    size = config.data.image_size
    root = resolve_data_root(run.data_root(data_root)) if int8 or data_root is not None else None
    valid = set(run.read_json("split.json")["valid"]) if root is not None and validate else set()

    def calibrate(count: int) -> Iterator[np.ndarray]:
        ids = sorted(_labelled_ids(root) - valid)
        return calibration_batches(root, ids, size, count, config.train.seed)

    part = ExportPart(
        run.root,
        DenseDetector(detector),
        torch.rand(2, 1, size, size) * 255,
        calibrate,
        outputs=DenseDetector.outputs,
        metadata=export_metadata(detector, size),
    )
    report = export_parts(run.root, [part], int8=int8, calibration=calibration)
    if root is not None and validate:
        chosen = sorted(valid)[:VALIDATION_IMAGES]
        report["validation_images"] = len(chosen)
        report["validation"] = validate_engines(run, root, chosen, exported_engines(report))
    run.write_json("export.json", report)
    return report


def _labelled_ids(root: Path) -> set[str]:
    return set(read_box_labels(root / TRAIN_LABELS))


def validate_engines(run: RunDir, root: Path, ids: list[str], engines: list[str]) -> dict[str, Any]:
    """Predict the held-out `ids` with each engine: the official mAP, and how far each image's most
    confident box score moved against torch (0 for an image with no box under both)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        folder.mkdir()
        for patient in ids:
            os.symlink((root / TRAIN_IMAGES / f"{patient}.dcm").resolve(), folder / f"{patient}.dcm")
        truth = Path(scratch) / "truth.csv"
        _write_truth(root / TRAIN_LABELS, set(ids), truth)

        def predict(engine: str) -> tuple[float | None, np.ndarray]:
            out = Path(scratch) / f"{engine}.csv"
            predict_folder(folder, out, [run.root], engine=engine, num_workers=0, device="cpu")
            predictions = read_submission(out)
            top = np.array([predictions[p].scores.max(initial=0.0) for p in ids])
            return evaluate_files(truth, out)["mAP"], top

        return compare_engines(engines, predict, "mAP")


def _write_truth(labels_csv: Path, ids: set[str], out: Path) -> None:
    """The official labels file restricted to `ids` (header kept)."""
    lines = labels_csv.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines[1:] if line.split(",", 1)[0] in ids]
    atomic_write_text(out, "\n".join([",".join(LABELS_HEADER), *kept]) + "\n")
