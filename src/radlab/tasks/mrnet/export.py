"""`radlab export` for MRNet: every unit network's slice encoder as RUN/units/<unit>/model.onnx (and
model.int8.onnx calibrated on that plane's training slices); max over slices, the head and the fusion stay
in PyTorch, they cost nothing. With --int8 or --data-root, the valid split is predicted by each engine as
`predict` would, and the change of the official mean AUROC is kept in RUN/export.json.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.infer.export import ExportPart, compare_engines, export_parts, exported_engines
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.volumes import read_volume
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet.evaluate import official_scores
from radlab.tasks.mrnet.formats import PLANES, read_predictions, read_split_labels, resolve_data_root, volume_path
from radlab.tasks.mrnet.model import SliceEncoder, load_units, unit_run
from radlab.tasks.mrnet.predict import predict_csv

SLICES_PER_SERIES = 4


def calibration_slices(
    root: Path, plane: str, size: int, count: int, seed: int = 0, batch: int = 8
) -> Iterator[np.ndarray]:
    """`count` slices of `plane` from training series (a seeded draw, a few evenly spaced slices per series),
    resized as predict does, as float32 batches."""
    ids, _ = read_split_labels(root, "train")
    transform = VolumeTransform(size)
    chosen: list[np.ndarray] = []
    for i in np.random.default_rng(seed).permutation(len(ids)):
        if len(chosen) >= count:
            break
        try:
            slices = transform(read_volume(volume_path(root, "train", plane, ids[i]))).numpy()
        except RadlabDataError:
            continue
        picks = np.linspace(0, len(slices) - 1, min(SLICES_PER_SERIES, len(slices))).round().astype(int)
        chosen.extend(slices[picks])
    chosen = chosen[:count]
    for start in range(0, len(chosen), batch):
        yield np.stack(chosen[start : start + batch]).astype(np.float32)


def export(
    run_dir: str | Path,
    *,
    int8: bool = False,
    calibration: int = 64,
    data_root: str | Path | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Write each unit's ONNX file(s) and return what RUN/export.json records; `validate` compares the engines
    on held-out data when the training data is known (--int8 or --data-root)."""
    run = RunDir(Path(run_dir))
    config, models = load_units(run.root)
    size = config.data.image_size
    root = resolve_data_root(run.data_root(data_root)) if int8 or data_root is not None else None

    def calibrate(plane: str, count: int) -> Iterator[np.ndarray]:
        return calibration_slices(root, plane, size, count, config.train.seed)

    example = torch.rand(3, 1, size, size) * 255
    parts = [
        ExportPart(unit_run(run, unit).root, SliceEncoder(model), example, partial(calibrate, unit.plane))
        for unit, model in models.items()
    ]
    report = export_parts(run.root, parts, int8=int8, calibration=calibration)
    if root is not None and validate:
        report["validation"] = validate_engines(run, root, exported_engines(report))
    run.write_json("export.json", report)
    return report


def validate_engines(run: RunDir, root: Path, engines: list[str]) -> dict[str, Any]:
    """Predict the valid split with each engine: the official mean AUROC and the probability change."""
    ids, labels = read_split_labels(root, "valid")
    with tempfile.TemporaryDirectory() as scratch:
        paths_csv = Path(scratch) / "valid_paths.csv"
        rows = [volume_path(root, "valid", plane, i).relative_to(root).as_posix() for i in ids for plane in PLANES]
        atomic_write_text(paths_csv, "".join(f"{row}\n" for row in rows))

        def predict(engine: str) -> tuple[float | None, np.ndarray]:
            out = Path(scratch) / f"{engine}.csv"
            predict_csv(paths_csv, out, run.root, root, engine=engine, num_workers=0)
            probs = read_predictions(out)
            return official_scores(labels, probs)["Average_AUROC"], probs

        return compare_engines(engines, predict, "Average_AUROC")
