"""`radlab mrnet predict`: three `.npy` paths per exam in, one `p_abnormal,p_acl,p_meniscus` row per exam out;
loading a run (every engine), the CodaLab bundle's entry and what `radlab export` writes and checks.

Row i of the output belongs to exam i of the input, whatever the order of planes within an exam. A missing
or unreadable plane costs a warning and the exam is predicted from its other planes (the fusion has a
regression for every subset of planes); an exam with no usable plane gets the training prevalence.
Each series is read once per plane and every network of that plane sees it in the same packed batch.
Export writes every unit network's slice encoder; max over slices, the head and the fusion stay in
PyTorch, they cost nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import torch
from torch import nn

from radlab.core.calibration import calibrated
from radlab.core.console import summary_line, warn
from radlab.core.engine.ensemble import expand_members
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError, nothing_read
from radlab.core.infer import iterate_batches, pick_device
from radlab.core.infer.export import ExportPart, ExportSpec, HeldOut
from radlab.core.infer.shard import of_shard
from radlab.core.io import resolve_under
from radlab.core.task import EngineOptions, engine_options
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet import MRNetConfig
from radlab.tasks.mrnet.data import SeriesDataset, collate_exams, read_series
from radlab.tasks.mrnet.formats import (
    TASKS,
    Exam,
    official_scores,
    read_exam_paths,
    read_predictions,
    read_split_labels,
    volume_path,
    write_paths_csv,
    write_predictions,
)
from radlab.tasks.mrnet.model import FusionFile, SliceEncoder, Unit, apply_fusion, load_units, unit_run

ErrorHandler = Callable[[str, int, str], None]
SLICES_PER_SERIES = 4


@dataclass(frozen=True)
class LoadedRun:
    """A run ready to predict: its folder, its config, its unit networks (for one engine) and its fusion."""

    root: Path
    config: MRNetConfig
    units: dict[Unit, Any]  # a SeriesClassifier, or one whose slices go through ONNX Runtime
    fusion: dict[str, Any]


@dataclass
class PredictionSummary:
    exams: int
    unreadable_series: int
    fallback_exams: list[str] = field(default_factory=list)


def load_run(run_dir: str | Path, engine: str = "torch") -> LoadedRun:
    """A finished run's config, fusion and unit networks (PyTorch, or their encoders in ONNX Runtime)."""
    from radlab.tasks.mrnet import TASK

    run = RunDir(Path(run_dir))
    config: MRNetConfig = TASK.run_config(run.root)
    fusion = run.read_json("fusion.json", FusionFile)
    return LoadedRun(run.root, config, load_units(config, run, engine=engine), fusion)


def predict_csv(
    input_csv: str | Path,
    output_csv: str | Path,
    run_dirs: str | Path | Sequence[str | Path],
    data_root: str | Path = ".",
    *,
    tta_hflip: bool | None = None,
    allow_outside_root: bool = False,
    loaded: LoadedRun | Sequence[LoadedRun] | None = None,
    **options: Unpack[EngineOptions],
) -> PredictionSummary:
    """Predict every exam of `input_csv` with the run(s) in `run_dirs` and write the submission; several
    runs, or a `--folds` ensemble, average their fused probabilities. `engine` is "torch", or "onnx" /
    "int8" for the files `radlab export` wrote (ONNX Runtime, CPU). `loaded` (what load_run returns, or one
    per member) skips loading, for callers predicting many files with one model."""
    batch_size, num_workers, strict, device, engine = engine_options(options)
    others: list[Callable[[], LoadedRun]]
    if loaded is None:
        members = expand_members([run_dirs] if isinstance(run_dirs, str | Path) else run_dirs)
        first = load_run(members[0], engine)
        others = [partial(load_run, member, engine) for member in members[1:]]  # loaded one at a time
    elif isinstance(loaded, LoadedRun):
        first, others = loaded, []
    else:
        first, others = loaded[0], [partial(_given, run) for run in loaded[1:]]
    config = first.config
    exams = of_shard(read_exam_paths(input_csv), options.get("shard"), lambda exam: exam.key)  # whole exams
    if not exams:  # a shard without an exam: an empty file (the format has no header)
        write_predictions(output_csv, [])
        return PredictionSummary(0, 0)
    planes = config.train.planes
    if strict:
        for exam in exams:
            missing = [p for p in planes if p not in exam.planes]
            if missing:
                line = min(line for line, _ in exam.planes.values())
                raise RadlabDataError(input_csv, f"exam {exam.key} lists no {', '.join(missing)} (--strict)", line)

    def located(exam: Exam, plane: str) -> Path | None:
        if plane not in exam.planes:
            return None
        line, path = exam.planes[plane]
        return resolve_under(data_root, path, allow_outside=allow_outside_root, source=input_csv, line=line)

    paths = {plane: [located(exam, plane) for exam in exams] for plane in planes}
    unreadable = 0

    def on_error(plane: str, index: int, error: str) -> None:
        nonlocal unreadable
        if plane not in exams[index].planes:
            return
        unreadable += 1
        line = exams[index].planes[plane][0]
        if strict:
            raise RadlabDataError(input_csv, f"{error} (--strict)", line)
        warn(f"{input_csv}:{line}: {error}; the exam is predicted from its other planes")

    member_probs = []
    loaders: list[Callable[[], LoadedRun]] = [partial(_given, first), *others]
    for k, load in enumerate(loaders):
        run = load()
        if run.config.train.planes != planes or run.config.data.image_size != config.data.image_size:
            raise RadlabDataError(run.root / "config.yaml", f"planes or image size differ from {first.root}")
        logits = unit_logits(
            run.units,
            paths,
            config.data.image_size,
            batch_size=batch_size or config.predict.batch_size,
            num_workers=config.predict.num_workers if num_workers is None else num_workers,
            device=device,
            tta_hflip=config.predict.tta_hflip if tta_hflip is None else tta_hflip,
            on_error=on_error if k == 0 else lambda *_: None,  # each bad file reported once
        )
        probs, usable = apply_fusion(run.fusion, logits, len(exams))
        member_probs.append(calibrated(run.root, TASKS, probs))  # each member's own temperatures, then the mean
    if not usable.any():
        listed = sum(len(exam.planes) for exam in exams)
        raise nothing_read(input_csv, listed, "series", " (is --data-root the folder its paths start from?)")
    write_predictions(output_csv, np.mean(member_probs, axis=0))
    fallback = [exam.key for exam, ok in zip(exams, usable, strict=True) if not ok]
    for key in fallback:
        warn(f"no usable plane for exam {key}: given the training prevalence of each label")
    for task in TASKS:
        if task not in first.fusion["tasks"]:
            warn(f"this run has no model for {task}; its column holds the training prevalence")
    return PredictionSummary(len(exams), unreadable, fallback)


def _given(run: LoadedRun) -> LoadedRun:
    return run


def unit_logits(
    models: Mapping[Unit, nn.Module],
    paths: Mapping[str, Sequence[Path | None]],
    image_size: int,
    *,
    batch_size: int = 4,
    num_workers: int = 2,
    device: str | torch.device = "auto",
    tta_hflip: bool = False,
    on_error: ErrorHandler | None = None,
) -> dict[tuple[str, str], np.ndarray]:
    """{(task, plane): (n,) logits} for every exam; NaN where the plane is missing or unreadable."""
    device = pick_device(device) if isinstance(device, str) else device
    n = len(next(iter(paths.values())))
    logits = {(task, unit.plane): np.full(n, np.nan) for unit in models for task in unit.tasks}
    transform = VolumeTransform(image_size)
    for plane in sorted({unit.plane for unit in models}):
        of_plane = [
            (unit, model.to(device).eval().to(memory_format=torch.channels_last))
            for unit, model in models.items()
            if unit.plane == plane
        ]
        dataset = SeriesDataset({plane: paths[plane]}, transform)
        batches = iterate_batches(
            dataset,
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=collate_exams,
            description=f"{plane} series",
        )
        with torch.inference_mode():
            for batch in batches:
                packed = batch["planes"][plane]
                index = batch["index"].numpy()
                readable = packed["readable"].numpy()
                if on_error is not None:
                    for i, error in zip(index, batch["errors"][plane], strict=True):
                        if error:
                            on_error(plane, int(i), error)
                slices = packed["slices"].to(device).contiguous(memory_format=torch.channels_last)
                lengths = packed["lengths"].to(device)
                for unit, model in of_plane:
                    out = model(slices, lengths).float()
                    if tta_hflip:
                        out = (out + model(slices.flip(-1), lengths).float()) / 2
                    out = out.cpu().numpy()
                    for k, task in enumerate(unit.tasks):
                        logits[(task, plane)][index[readable]] = out[readable, k]
    return logits


def describe(summary: PredictionSummary) -> str:
    """One human line about a finished prediction."""
    fallback = len(summary.fallback_exams)
    return summary_line(
        f"{summary.exams} exams",
        (summary.unreadable_series, "unreadable series"),
        (fallback, "exams given the prevalence"),
    )


def codalab_predict(input_csv: str, output_csv: str, model_dir: Path) -> str:
    """The CodaLab bundle's predict: paths relative to the working directory, wherever they point (they are
    CodaLab's own data)."""
    return describe(predict_csv(input_csv, output_csv, model_dir, data_root=Path.cwd(), allow_outside_root=True))


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
            slices = transform(read_series(volume_path(root, "train", plane, ids[i]))).numpy()
        except RadlabDataError:
            continue
        picks = np.linspace(0, len(slices) - 1, min(SLICES_PER_SERIES, len(slices))).round().astype(int)
        chosen.extend(slices[picks])
    chosen = chosen[:count]
    for start in range(0, len(chosen), batch):
        yield np.stack(chosen[start : start + batch]).astype(np.float32)


def export_parts(run: RunDir, loaded: LoadedRun, root: Path | None, held_out_apart: bool) -> list[ExportPart]:
    """Each unit's slice encoder, written as RUN/units/<unit>/model.onnx, calibrated on its plane's training
    slices (the valid split is held out either way)."""
    size, seed = loaded.config.data.image_size, loaded.config.train.seed

    def calibrate(plane: str, count: int) -> Iterator[np.ndarray]:
        assert root is not None  # int8 export asks for calibration only with the training data known
        return calibration_slices(root, plane, size, count, seed)

    example = torch.rand(3, 1, size, size) * 255
    return [
        ExportPart(unit_run(run, unit).root, SliceEncoder(model), example, partial(calibrate, unit.plane))
        for unit, model in loaded.units.items()
    ]


def held_out(run: RunDir, root: Path, scratch: Path) -> HeldOut:
    """The valid split predicted as `predict` would: the official mean AUROC and the fused probabilities."""
    _, labels = read_split_labels(root, "valid")
    paths_csv = scratch / "valid_paths.csv"
    write_paths_csv(root, "valid", paths_csv)

    calls = itertools.count()

    def predict(
        engine: str, models: Sequence[Path] | None = None, device: str = "cpu"
    ) -> tuple[float | None, np.ndarray]:
        out = scratch / f"{engine}-{next(calls)}.csv"
        predict_csv(paths_csv, out, list(models or [run.root]), root, engine=engine, num_workers=0, device=device)
        probs = read_predictions(out)
        return official_scores(labels, probs)["Average_AUROC"], probs

    return HeldOut(predict)


EXPORT = ExportSpec(parts=export_parts, held_out=held_out, metric="Average_AUROC")
