"""`radlab ich predict`: a folder of `ID_*.dcm` in, the `ID,Label` submission out (6 rows per readable image);
loading a run (every engine) and what `radlab export` writes and checks.

Headers give the series and slice order; every slice is decoded once and embedded under each TTA variant;
each series goes through the kept epochs of the sequence model, whose probabilities are averaged, and so
are several runs (folds). An unreadable file is left out with a warning (an error with `strict`).

Export writes the slice classifier up to its embeddings as RUN/slice/model.onnx (and model.int8.onnx
calibrated on training slices); the 6-logit layer and the sequence BiLSTM stay in PyTorch. Its held-out
check predicts whole series of the run's held-out fold (up to `VALIDATION_SLICES` slices) as `predict`
would, scored with the weighted log loss.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Unpack

import numpy as np
import torch
from torch import nn

from radlab.core.calibration import calibrated
from radlab.core.console import summary_line, warn
from radlab.core.engine.ensemble import expand_members
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError, nothing_read
from radlab.core.infer import engine_model
from radlab.core.infer.export import ExportPart, ExportSpec, HeldOut, readable_batches
from radlab.core.infer.shard import of_shard
from radlab.core.io.dicom import list_dicom_folder
from radlab.core.models import ImageClassifier, load_trained
from radlab.core.task import EngineOptions, engine_options
from radlab.tasks.ich import IchConfig
from radlab.tasks.ich.data import SliceDataset, TrainingTable, fold_rows, read_metadata, read_training_table, sequences
from radlab.tasks.ich.evaluate import weighted_log_loss
from radlab.tasks.ich.formats import SUBTYPES, TRAIN_CSV, read_submission, series_key, write_submission
from radlab.tasks.ich.model import (
    SequenceModel,
    SliceEmbedder,
    build_slice_model,
    embed_slices,
    embedding_size,
    load_snapshots,
    sequence_probs,
)

VALIDATION_SLICES = 512


@dataclass
class PredictionSummary:
    images: int
    series: int
    skipped: int


class LoadedRun(NamedTuple):
    """What predict runs of one training run: the slice classifier, the engine that embeds its slices (the
    classifier's own trunk, or an ONNX Runtime session) and the sequence-model snapshots."""

    config: IchConfig
    model: ImageClassifier
    snapshots: list[SequenceModel]
    embedder: nn.Module


def load_run(run_dir: str | Path, engine: str = "torch") -> LoadedRun:
    """The config, slice classifier, slice embedder and sequence snapshots of a finished run; with `engine`
    onnx or int8 the slices are embedded by RUN/slice/model.onnx or model.int8.onnx (`radlab export`)."""
    from radlab.tasks.ich import TASK

    run = RunDir(Path(run_dir))
    for path in (run.config, run.root / "slice" / "model.safetensors"):
        if not path.is_file():
            raise RadlabDataError(path, "missing: not a finished radlab ICH run (train first)")
    config: IchConfig = TASK.run_config(run.root)
    model = build_slice_model(config, initialise=False)
    load_trained(model, run.root / "slice" / "model.safetensors", config.model.backbone)
    snapshots = load_snapshots(run.root / "sequence", embedding_size(model), config.sequence.packing)
    if not snapshots:
        raise RadlabDataError(run.root / "sequence", "no sequence-model snapshots (train the sequence stage)")
    model = model.eval()
    embedder = engine_model(SliceEmbedder(model), run.root / "slice", engine)
    return LoadedRun(config, model, snapshots, embedder)


def predict_folder(
    input_dir: str | Path,
    output_csv: str | Path,
    run_dirs: Sequence[str | Path],
    *,
    loaded: Sequence[LoadedRun] | None = None,
    **options: Unpack[EngineOptions],
) -> PredictionSummary:
    """Write `ID,Label` rows for every readable slice in `input_dir`, averaged over the runs (a `--folds`
    ensemble counts as its folds). `engine` is "torch", or "onnx" / "int8" for the files `radlab export`
    wrote (ONNX Runtime, CPU). `loaded` (load_run of each run) skips loading, for repeated calls."""
    batch_size, num_workers, strict, device, engine = engine_options(options)
    run_dirs = expand_members(run_dirs)
    paths = list_dicom_folder(input_dir)
    infos, skipped = read_metadata(paths, strict=strict)
    if not infos:
        raise nothing_read(input_dir, len(paths), "DICOM files")
    infos = of_shard(infos, options.get("shard"), series_key)  # whole series: the sequence model reads them whole
    if not infos:  # a shard without a series: the header alone
        write_submission(output_csv, [], np.zeros((0, 6)))
        return PredictionSummary(0, 0, len(skipped))
    total = np.zeros((len(infos), 6))
    readable = np.ones(len(infos), dtype=bool)
    runs = loaded if loaded is not None else (load_run(run_dir, engine) for run_dir in run_dirs)
    for member, root in zip(runs, run_dirs, strict=True):  # serve passes its members with what it loaded
        config, model, snapshots, embedder = member
        embedded = embed_slices(
            model,
            [info.path for info in infos],
            config,
            batch_size=batch_size or config.predict.batch_size,
            num_workers=config.predict.num_workers if num_workers is None else num_workers,
            device=device,
            description=f"embedding {len(infos)} slices",
            embedder=embedder,
        )
        for k, error in embedded.errors.items():
            if strict:
                raise RadlabDataError(infos[k].path, f"{error} (--strict)")
        readable &= embedded.readable
        groups = [[k for k in group if embedded.readable[k]] for group in sequences(infos, config.data.slice_order)]
        probs = sequence_probs(snapshots, embedded.embeddings, [g for g in groups if g])
        total += np.nan_to_num(calibrated(root, SUBTYPES, probs))  # each member's own temperatures
    for k in np.flatnonzero(~readable).tolist():
        warn(f"{infos[k].path}: unreadable pixel data; left out of the submission")
    kept = np.flatnonzero(readable)
    if not kept.size:
        raise nothing_read(input_dir, len(paths), "DICOM files")
    members = len(loaded) if loaded is not None else len(run_dirs)
    write_submission(output_csv, [infos[k].image for k in kept], total[kept] / members)
    return PredictionSummary(len(kept), len(sequences([infos[k] for k in kept])), len(skipped) + int((~readable).sum()))


def describe(summary: PredictionSummary) -> str:
    """One human line about a finished prediction."""
    head = f"{summary.images} images in {summary.series} series (6 rows each)"
    return summary_line(head, (summary.skipped, "files left out"))


@functools.lru_cache(maxsize=1)
def _training_table(root: Path, stamp: int) -> TrainingTable:
    return read_training_table(root)


def training_table(root: Path) -> TrainingTable:
    """The training table of `root`, read once for an export's calibration and its held-out check (the
    label file's modification time keys it, so a changed file is read again)."""
    return _training_table(Path(root), (Path(root) / TRAIN_CSV).stat().st_mtime_ns)


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


def export_parts(run: RunDir, loaded: LoadedRun, root: Path | None, held_out_apart: bool) -> list[ExportPart]:
    """The slice embedder, calibrated on the fold's training slices (on any labelled slice when nothing is
    held out)."""
    config, model = loaded.config, loaded.model
    size = config.data.image_size

    def calibrate(count: int) -> Iterator[np.ndarray]:
        assert root is not None  # int8 export asks for calibration only with the training data known
        table = training_table(root)
        rows = fold_rows(table, config)[0] if held_out_apart else list(range(len(table.infos)))
        return calibration_batches(table, rows, config, count)

    return [ExportPart(run.root / "slice", SliceEmbedder(model), torch.rand(2, 3, size, size) * 255, calibrate)]


def validation_series(table: TrainingTable, rows: list[int], limit: int = VALIDATION_SLICES) -> list[int]:
    """Whole held-out series, in a stable order, until `limit` slices are reached (at least one series)."""
    chosen: list[int] = []
    for group in table.series(rows, np.ones(len(rows), dtype=bool)):
        if chosen and len(chosen) + len(group) > limit:
            break
        chosen.extend(rows[k] for k in group)
    return chosen


def held_out(run: RunDir, root: Path, scratch: Path) -> HeldOut:
    """Whole series of the held-out fold predicted as `predict` would: the weighted log loss and the
    probabilities, in image order."""
    from radlab.tasks.ich import TASK

    table = training_table(root)
    chosen = validation_series(table, fold_rows(table, TASK.run_config(run.root))[1])
    labels = {table.infos[i].image: table.labels[i] for i in chosen}
    folder = scratch / "slices"
    folder.mkdir()
    for i in chosen:
        os.symlink(table.infos[i].path.resolve(), folder / table.infos[i].path.name)

    calls = itertools.count()

    def predict(
        engine: str, models: Sequence[Path] | None = None, device: str = "cpu"
    ) -> tuple[float | None, np.ndarray]:
        out = scratch / f"{engine}-{next(calls)}.csv"
        predict_folder(folder, out, list(models or [run.root]), engine=engine, num_workers=0, device=device)
        images, probs = read_submission(out)
        order = np.argsort(images)
        truth = np.stack([labels[images[k]] for k in order])
        return weighted_log_loss(truth, probs[order]), probs[order]

    return HeldOut(predict, {"validation_slices": len(chosen)})


EXPORT = ExportSpec(parts=export_parts, held_out=held_out, metric="weighted_log_loss")
