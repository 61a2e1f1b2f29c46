"""`radlab ich predict`: a folder of `ID_*.dcm` in, the `ID,Label` submission out (6 rows per readable image).

Headers give the series and slice order; every slice is decoded once and embedded under each TTA variant;
each series goes through the kept epochs of the sequence model, whose probabilities are averaged, and so
are several runs (folds). An unreadable file is left out with a warning (an error with `strict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from torch import nn

from radlab.core.config import read_yaml, validate_config
from radlab.core.console import warn
from radlab.core.engine.ensemble import expand_members
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.infer import engine_model
from radlab.core.io.dicom import list_dicom_folder
from radlab.core.models import ImageClassifier, load_weights
from radlab.tasks.ich.config import IchConfig
from radlab.tasks.ich.embeddings import embed_slices
from radlab.tasks.ich.formats import write_submission
from radlab.tasks.ich.inference import load_snapshots, sequence_probs
from radlab.tasks.ich.metadata import read_metadata, sequences
from radlab.tasks.ich.model import SequenceModel, SliceEmbedder, build_slice_model


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
    run = RunDir(Path(run_dir))
    for path in (run.config, run.root / "slice" / "model.safetensors"):
        if not path.is_file():
            raise RadlabDataError(path, "missing: not a finished radlab ICH run (train first)")
    config = validate_config(IchConfig, read_yaml(run.config, "run config"), source=str(run.config))
    model = build_slice_model(config, initialise=False)
    model.load_state_dict(load_weights(run.root / "slice" / "model.safetensors"))
    snapshots = load_snapshots(run.root / "sequence", int(model.backbone.num_features))
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
    batch_size: int | None = None,
    num_workers: int | None = None,
    strict: bool = False,
    device: str = "auto",
    engine: str = "torch",
    loaded: Sequence[LoadedRun] | None = None,
) -> PredictionSummary:
    """Write `ID,Label` rows for every readable slice in `input_dir`, averaged over the runs (a `--folds`
    ensemble counts as its folds). `engine` is "torch", or "onnx" / "int8" for the files `radlab export`
    wrote (ONNX Runtime, CPU). `loaded` (load_run of each run) skips loading, for repeated calls."""
    run_dirs = expand_members(run_dirs)
    paths = list_dicom_folder(input_dir)
    infos, skipped = read_metadata(paths)
    if strict and skipped:
        raise RadlabDataError(skipped[0][0], f"{skipped[0][1]} (--strict)")
    total = np.zeros((len(infos), 6))
    readable = np.ones(len(infos), dtype=bool)
    for member in loaded if loaded is not None else (load_run(run_dir, engine) for run_dir in run_dirs):
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
        groups = [[k for k in group if embedded.readable[k]] for group in sequences(infos)]
        total += np.nan_to_num(sequence_probs(snapshots, embedded.embeddings, [g for g in groups if g]))
    for k in np.flatnonzero(~readable):
        warn(f"{infos[k].path}: unreadable pixel data; left out of the submission")
    kept = np.flatnonzero(readable)
    members = len(loaded) if loaded is not None else len(run_dirs)
    write_submission(output_csv, [infos[k].image for k in kept], total[kept] / members)
    return PredictionSummary(len(kept), len(sequences([infos[k] for k in kept])), len(skipped) + int((~readable).sum()))


def describe(summary: PredictionSummary) -> str:
    text = f"{summary.images} images in {summary.series} series (6 rows each)"
    return text + (f"; {summary.skipped} files left out" if summary.skipped else "")
