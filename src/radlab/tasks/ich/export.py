"""`radlab export` for RSNA ICH: the slice classifier up to its embeddings as RUN/slice/model.onnx (and
model.int8.onnx calibrated on training slices); the 6-logit layer and the sequence BiLSTM stay in PyTorch.
With --int8 or --data-root, whole series of the run's held-out fold (up to `VALIDATION_SLICES` slices) are
predicted by each engine as `predict` would, and the change of the weighted log loss is kept in
RUN/export.json.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core.engine.run_dir import RunDir
from radlab.core.infer.export import ExportPart, compare_engines, export_parts, exported_engines, readable_batches
from radlab.tasks.ich.config import IchConfig
from radlab.tasks.ich.data import SliceDataset
from radlab.tasks.ich.evaluate import weighted_log_loss
from radlab.tasks.ich.formats import read_submission
from radlab.tasks.ich.model import SliceEmbedder
from radlab.tasks.ich.predict import load_run, predict_folder
from radlab.tasks.ich.train import TrainingTable, fold_rows, read_training_table, resolve_data_root

VALIDATION_SLICES = 512


def calibration_batches(
    table: TrainingTable, rows: list[int], config: IchConfig, count: int, batch: int = 8
) -> Iterator[np.ndarray]:
    """`count` training slices (a seeded draw among `rows`), windowed and resized as predict does, as float32
    batches; unreadable slices are left out."""
    chosen = np.random.default_rng(config.train.seed).permutation(rows)[:count]
    data = config.data
    dataset = SliceDataset(
        [table.infos[i].path for i in sorted(chosen)],
        data.image_size,
        crop=data.crop,
        fix=data.pixel_representation_fix,
    )
    return readable_batches(dataset, batch)


def export(
    run_dir: str | Path,
    *,
    int8: bool = False,
    calibration: int = 64,
    data_root: str | Path | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Write the slice embedder's ONNX file(s) and return what RUN/export.json records; `validate` compares the engines
    on held-out data when the training data is known (--int8 or --data-root)."""
    run = RunDir(Path(run_dir))
    config, model, _, _ = load_run(run.root)
    size = config.data.image_size
    table = None
    if int8 or data_root is not None:
        table = read_training_table(resolve_data_root(run.data_root(data_root)))
        everything = (list(range(len(table.infos))), [])  # without validation, calibrate on any labelled slice
        train_rows, valid_rows = fold_rows(table, config) if validate else everything

    def calibrate(count: int) -> Iterator[np.ndarray]:
        return calibration_batches(table, train_rows, config, count)

    part = ExportPart(run.root / "slice", SliceEmbedder(model), torch.rand(2, 3, size, size) * 255, calibrate)
    report = export_parts(run.root, [part], int8=int8, calibration=calibration)
    if table is not None and validate:
        chosen = validation_series(table, valid_rows)
        report["validation_slices"] = len(chosen)
        report["validation"] = validate_engines(run, table, chosen, exported_engines(report))
    run.write_json("export.json", report)
    return report


def validation_series(table: TrainingTable, rows: list[int], limit: int = VALIDATION_SLICES) -> list[int]:
    """Whole held-out series, in a stable order, until `limit` slices are reached (at least one series)."""
    chosen: list[int] = []
    for group in table.series(rows, np.ones(len(rows), dtype=bool)):
        if chosen and len(chosen) + len(group) > limit:
            break
        chosen.extend(rows[k] for k in group)
    return chosen


def validate_engines(run: RunDir, table: TrainingTable, chosen: list[int], engines: list[str]) -> dict[str, Any]:
    """Predict the `chosen` slices with each engine: the weighted log loss and the probability change."""
    labels = {table.infos[i].image: table.labels[i] for i in chosen}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "slices"
        folder.mkdir()
        for i in chosen:
            os.symlink(table.infos[i].path.resolve(), folder / table.infos[i].path.name)

        def predict(engine: str) -> tuple[float | None, np.ndarray]:
            out = Path(scratch) / f"{engine}.csv"
            predict_folder(folder, out, [run.root], engine=engine, num_workers=0, device="cpu")
            images, probs = read_submission(out)
            order = np.argsort(images)
            truth = np.stack([labels[images[k]] for k in order])
            return weighted_log_loss(truth, probs[order]), probs[order]

        return compare_engines(engines, predict, "weighted_log_loss")
