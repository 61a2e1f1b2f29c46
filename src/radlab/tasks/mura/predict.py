"""`radlab mura predict`: the CodaLab contract, streaming, batched across studies, never losing a study;
loading a run (every engine), the CodaLab bundle's entry and what `radlab export` writes and checks.

Paths come from a headerless image-paths CSV; one row per study leaves, in first-seen order. An image that
cannot be read costs a warning and its study is predicted from its other images; a study with no readable
image gets its body part's majority training label and is listed at the end. `strict` makes any bad image
an error instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Unpack

import numpy as np
import torch
from torch import nn

from radlab.core.calibration import calibrated
from radlab.core.console import summary_line, warn
from radlab.core.engine.ensemble import expand_members
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError, nothing_read
from radlab.core.infer import engine_model, pick_device, stream_predictions
from radlab.core.infer.export import ExportPart, ExportSpec, HeldOut, readable_batches
from radlab.core.infer.shard import of_shard
from radlab.core.io import resolve_under
from radlab.core.io.cache import cached_image_dataset
from radlab.core.io.dataset import ImageFileDataset
from radlab.core.models.ensemble import ProbabilityAverage
from radlab.core.models.temperature import with_temperature
from radlab.core.task import EngineOptions, engine_options
from radlab.core.transforms import build_image_transform
from radlab.core.transforms.image import ResizeMode
from radlab.tasks.mura import MuraConfig
from radlab.tasks.mura.data import StudyPooler, group_studies
from radlab.tasks.mura.evaluate import evaluate_files
from radlab.tasks.mura.formats import (
    read_image_paths,
    read_probabilities,
    split_csvs,
    study_type,
    write_predictions,
    write_probabilities,
)
from radlab.tasks.mura.model import load_model

Loaded = tuple[MuraConfig, nn.Module]


@dataclass
class PredictionSummary:
    """What a predict run did, for the closing message."""

    studies: int
    images: int
    unreadable_images: int
    abnormal: int
    fallback_studies: list[str] = field(default_factory=list)
    image_probabilities: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per input row; NaN: unreadable


def predict_csv(
    input_csv: str | Path,
    output_csv: str | Path,
    run_dirs: str | Path | Sequence[str | Path],
    data_root: str | Path = ".",
    *,
    threshold: float | None = None,
    tta_hflip: bool | None = None,
    probabilities_csv: str | Path | None = None,
    loaded: Loaded | None = None,
    allow_outside_root: bool = False,
    **options: Unpack[EngineOptions],
) -> PredictionSummary:
    """Predict every study of `input_csv` with the model of the run(s) in `run_dirs` (several, or a --folds
    ensemble, average their probabilities) and write the CodaLab file.

    `engine` is "torch", or "onnx" / "int8" for the files `radlab export` wrote (ONNX Runtime, CPU).
    `loaded` (from load_members) skips loading, for callers predicting many files with one model."""
    batch_size, num_workers, strict, device, engine = engine_options(options)
    members = expand_members([run_dirs] if isinstance(run_dirs, str | Path) else run_dirs)
    config, model = loaded if loaded is not None else load_members(members, engine)
    settings = config.predict
    threshold = settings.threshold if threshold is None else threshold
    fallback = _fallback_labels(RunDir(members[0]))

    images = of_shard(read_image_paths(input_csv), options.get("shard"), lambda image: image.study)  # whole studies
    if not images:  # a shard without a study: empty files (the format has no header)
        write_predictions(output_csv, [])
        if probabilities_csv is not None:
            write_probabilities(probabilities_csv, [])
        return PredictionSummary(0, 0, 0, 0)
    groups = group_studies(images)
    transform = build_image_transform(config.data.image_size, resize=config.data.resize)
    files = [
        resolve_under(data_root, image.path, allow_outside=allow_outside_root, source=input_csv, line=image.line)
        for image in images
    ]
    data = config.data
    dataset = (
        cached_image_dataset(files, data.cache_dir, data.image_size, data.resize, workers=settings.num_workers)
        if data.cache_dir is not None
        else ImageFileDataset(files, transform, transform.output_shape)
    )
    pooler = StudyPooler(len(groups.studies), settings.pooling)
    image_probabilities = np.full(len(images), np.nan)
    unreadable = 0
    for batch in stream_predictions(
        model,
        dataset,
        batch_size=batch_size or settings.batch_size,
        num_workers=settings.num_workers if num_workers is None else num_workers,
        device=pick_device(device),
        tta_hflip=settings.tta_hflip if tta_hflip is None else tta_hflip,
        description=f"predicting {len(groups.studies)} studies",
    ):
        readable = np.array([not error for error in batch.errors])
        for index, error in zip(batch.indices, batch.errors, strict=True):
            if error:
                unreadable += 1
                line = images[int(index)].line
                if strict:
                    raise RadlabDataError(input_csv, f"{error} (--strict)", line)
                warn(f"{input_csv}:{line}: {error}; its study is predicted from its other images")
        pooler.add(groups.image_study[batch.indices], batch.probs[:, 0], readable)
        image_probabilities[batch.indices[readable]] = batch.probs[readable, 0]

    if images and unreadable == len(images):
        raise nothing_read(input_csv, len(images), "images", " (is --data-root the folder its paths start from?)")
    probabilities = pooler.probabilities()
    if len(members) == 1:  # several members were each calibrated per image before averaging (combine_members)
        probabilities = calibrated(members[0], ["abnormal"], probabilities[:, None])[:, 0]
    labels = (probabilities > threshold).astype(np.int64)  # the threshold reads the calibrated scale
    fallback_studies = []
    for s in np.flatnonzero(~pooler.has_image):
        study = groups.studies[s]
        labels[s], probabilities[s] = fallback(study)
        fallback_studies.append(study)
    write_predictions(output_csv, zip(groups.studies, labels.tolist(), strict=True))
    if probabilities_csv is not None:
        write_probabilities(probabilities_csv, zip(groups.studies, probabilities.tolist(), strict=True))
    for study in fallback_studies:
        warn(f"no readable image in {study}: given the training majority label for its body part")
    return PredictionSummary(
        len(groups.studies), len(images), unreadable, int(labels.sum()), fallback_studies, image_probabilities
    )


def load_run(run_dir: str | Path, engine: str = "torch") -> Loaded:
    """A run's config and the model `engine` runs (PyTorch, or an ONNX Runtime session)."""
    config, model = load_model(run_dir)
    return config, engine_model(model, run_dir, engine)


def load_members(members: Sequence[Path], engine: str = "torch") -> Loaded:
    """Several runs as one model averaging their probabilities; they must share the preprocessing and
    predict settings, which come from the first."""
    return combine_members(members, [load_run(member, engine) for member in members])


def combine_members(members: Sequence[Path], loaded: Sequence[Loaded]) -> Loaded:
    """The loaded runs of `members` as one model (load_members, for runs loaded already)."""
    config = loaded[0][0]
    for member, (other, _) in zip(members[1:], loaded[1:], strict=True):
        if (other.data.image_size, other.data.resize, other.predict) != (
            config.data.image_size,
            config.data.resize,
            config.predict,
        ):
            raise RadlabDataError(member / "config.yaml", f"preprocessing or predict settings differ from {members[0]}")
    if len(loaded) == 1:
        return config, loaded[0][1]
    models = [with_temperature(model, member, "abnormal") for member, (_, model) in zip(members, loaded, strict=True)]
    return config, ProbabilityAverage(models)


def _fallback_labels(run: RunDir) -> Callable[[str], tuple[int, float]]:
    """study -> (label, probability) for a study with no readable image: its type's training majority."""
    try:
        stats = run.read_json("data_stats.json")
    except RadlabDataError:
        stats = {"types": {}, "majority_label": 0, "abnormal_prevalence": 0.0}

    def fallback(study: str) -> tuple[int, float]:
        of_type = stats["types"].get(study_type(study) or "UNKNOWN")
        if of_type:
            return of_type["majority_label"], of_type["abnormal_studies"] / of_type["studies"]
        return stats["majority_label"], stats["abnormal_prevalence"]

    return fallback


def codalab_predict(input_csv: str, output_csv: str, model_dir: Path) -> str:
    """The CodaLab bundle's predict: paths relative to the working directory, wherever they point (they are
    CodaLab's own data)."""
    return describe(predict_csv(input_csv, output_csv, model_dir, data_root=Path.cwd(), allow_outside_root=True))


def describe(summary: PredictionSummary) -> str:
    """One human line about a finished prediction."""
    return summary_line(
        f"{summary.studies} studies from {summary.images} images: {summary.abnormal} abnormal",
        (summary.unreadable_images, "unreadable images"),
        (len(summary.fallback_studies), "studies given the fallback label"),
    )


def calibration_batches(
    root: Path, size: int, resize: ResizeMode, count: int, seed: int = 0, batch: int = 8
) -> Iterator[np.ndarray]:
    """`count` training images (a seeded draw), decoded and resized as predict does, as float32 batches."""
    paths_csv, _ = split_csvs(root, "train")
    images = read_image_paths(paths_csv)
    chosen = np.random.default_rng(seed).permutation(len(images))[:count]
    transform = build_image_transform(size, resize=resize)
    dataset = ImageFileDataset([root / images[i].path for i in sorted(chosen)], transform, transform.output_shape)
    return readable_batches(dataset, batch)


def export_parts(run: RunDir, loaded: Loaded, root: Path | None, held_out_apart: bool) -> list[ExportPart]:
    """The classifier, calibrated on training images (the valid split is held out either way)."""
    config, model = loaded
    size = config.data.image_size

    def calibrate(count: int) -> Iterator[np.ndarray]:
        assert root is not None  # int8 export asks for calibration only with the training data known
        return calibration_batches(root, size, config.data.resize, count, config.train.seed)

    return [ExportPart(run.root, model, torch.rand(2, 1, size, size) * 255, calibrate)]


def held_out(run: RunDir, root: Path, scratch: Path) -> HeldOut:
    """The valid split predicted as `predict` would: the official kappa and the study probabilities."""
    paths_csv, labels_csv = split_csvs(root, "valid")

    calls = itertools.count()

    def predict(
        engine: str, models: Sequence[Path] | None = None, device: str = "cpu"
    ) -> tuple[float | None, np.ndarray]:
        out, probs = (scratch / f"{engine}-{k}{suffix}" for k in [next(calls)] for suffix in (".csv", ".probs.csv"))
        runs = list(models or [run.root])
        predict_csv(paths_csv, out, runs, root, probabilities_csv=probs, engine=engine, num_workers=0, device=device)
        official, _ = evaluate_files(labels_csv, out)
        return official["Overall_Mean"], np.array([row.probability for row in read_probabilities(probs)])

    return HeldOut(predict)


EXPORT = ExportSpec(parts=export_parts, held_out=held_out, metric="kappa")
