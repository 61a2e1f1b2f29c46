"""`radlab pneumonia predict`: a folder of `<patientId>.dcm` in, the Kaggle submission out; loading a run
(every engine) and what `radlab export` writes and checks.

CPU first (seed 003 runs this model on a low-power board): batched and streaming over a bounded loader,
a progress bar on a terminal, boxes mapped back to each image's original pixels. One row per DICOM: an
unreadable file gets an empty prediction and a warning (or an error with `strict`). Several runs (fold
models) are averaged as the recipe does, per anchor: class probabilities and box centres by the mean, box
sizes by P20 + (P20 - P80) x 0.9 over the models, which shrinks boxes where the models disagree.

Export writes the detector's network (backbone, FPN, RetinaNet head, global head) as RUN/model.onnx (and
model.int8.onnx calibrated on training images), with the level sizes in its metadata; anchors, decoding and
NMS stay in PyTorch. Its held-out check predicts the run's held-out fold (up to `VALIDATION_IMAGES`) with
each engine as `predict` would, and compares the official mAP.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import torch

from radlab.core.console import summary_line, warn
from radlab.core.engine.ensemble import expand_members
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabConfigError, RadlabDataError, nothing_read
from radlab.core.infer import engine_model, iterate_batches, pick_device
from radlab.core.infer.export import ExportPart, ExportSpec, HeldOut, readable_batches
from radlab.core.infer.onnx import ExportedModel
from radlab.core.infer.shard import of_shard
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.dicom import list_dicom_folder
from radlab.core.models import load_trained
from radlab.core.task import EngineOptions, engine_options
from radlab.tasks.pneumonia import PneumoniaConfig
from radlab.tasks.pneumonia.data import DetectionTransform, DicomBoxDataset, collate_detection
from radlab.tasks.pneumonia.evaluate import evaluate_files
from radlab.tasks.pneumonia.formats import (
    LABELS_HEADER,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    Prediction,
    read_box_labels,
    read_submission,
    write_submission,
)
from radlab.tasks.pneumonia.model import (
    DenseDetector,
    EngineDetector,
    PneumoniaDetector,
    PostprocessFile,
    export_metadata,
    logit,
    opacity_weight,
    select,
    to_original,
)

SIZE_SCALE = 0.9
VALIDATION_IMAGES = 256
Loaded = tuple[PneumoniaConfig, Any]  # the config and a PneumoniaDetector (or an EngineDetector)


@dataclass
class PredictionSummary:
    images: int
    with_boxes: int
    boxes: int
    unreadable: int


def ensemble_detections(models: Sequence[PneumoniaDetector], pixels: torch.Tensor) -> tuple[list, torch.Tensor]:
    """Detections and global log-probabilities of one model, or of several averaged per anchor."""
    if len(models) == 1:
        out = models[0](pixels, detect=True)
        return out["detections"], out["global"]
    raws = [model.raw_outputs(pixels) for model in models]
    probs = torch.stack([torch.sigmoid(r["head"]["cls_logits"]) for r in raws]).mean(0)
    deltas = torch.stack([r["head"]["bbox_regression"] for r in raws])
    low, high = torch.quantile(deltas[..., 2:], 0.2, dim=0), torch.quantile(deltas[..., 2:], 0.8, dim=0)
    merged = dict(raws[0])
    merged["head"] = {
        "cls_logits": logit(probs),
        "bbox_regression": torch.cat([deltas[..., :2].mean(0), low + (low - high) * SIZE_SCALE], dim=-1),
    }
    global_log_probs = torch.stack([r["global"].exp() for r in raws]).mean(0).log()
    return models[0].decode(merged), global_log_probs


def predict_folder(
    input_dir: str | Path,
    output_csv: str | Path,
    run_dirs: Sequence[str | Path],
    *,
    threshold: float | None = None,
    use_global: bool | None = None,
    loaded: Sequence[Loaded] | None = None,
    **options: Unpack[EngineOptions],
) -> PredictionSummary:
    """Write one submission row per `*.dcm` in `input_dir` (sorted by name). `engine` is "torch", or "onnx" /
    "int8" for the files `radlab export` wrote (ONNX Runtime, CPU). `loaded` (load_run of each run)
    skips loading, for repeated calls."""
    batch_size, num_workers, strict, device, engine = engine_options(options)
    run_dirs = expand_members(run_dirs)  # a --folds ensemble counts as its folds
    paths = of_shard(list_dicom_folder(input_dir), options.get("shard"), lambda path: path.stem)  # one per patient
    if not paths:  # a shard without an image: the header alone
        write_submission(output_csv, [])
        return PredictionSummary(0, 0, 0, 0)
    loaded = loaded if loaded is not None else [load_run(run, engine) for run in run_dirs]
    config = loaded[0][0]
    for other, _ in loaded[1:]:
        if (other.data.image_size, other.model.levels) != (config.data.image_size, config.model.levels):
            raise RadlabConfigError("ensembled runs must share data.image_size and model.levels")
    posts = [RunDir(Path(run)).read_json("postprocess.json", PostprocessFile) for run in run_dirs]
    post = posts[0]
    if threshold is None:  # each fold chose its own on its held-out fold: their mean
        chosen = [p["score_threshold"] for p in posts if p["score_threshold"] is not None]
        threshold = float(np.mean(chosen)) if chosen else post["score_threshold"]
    use_global = post["use_global"] if use_global is None else use_global
    target = pick_device(device)
    models = [model.to(target).eval() for _, model in loaded]
    workers = config.predict.num_workers if num_workers is None else num_workers
    transform = DetectionTransform(config.data.image_size)
    dataset = DicomBoxDataset(paths, transform, cache_dir=config.data.cache_dir, cache_workers=workers)
    rows: list[tuple[str, Prediction]] = []
    unreadable = 0
    batches = iterate_batches(
        dataset,
        batch_size=batch_size or config.predict.batch_size,
        num_workers=workers,
        collate_fn=collate_detection,
        description=f"detecting in {len(paths)} images",
    )
    with torch.inference_mode():
        for batch in batches:
            detections, global_log_probs = ensemble_detections(models, batch["image"].to(target))
            weights = opacity_weight(global_log_probs).cpu().numpy()
            for k, index in enumerate(batch["index"].tolist()):
                patient = paths[index].stem
                if batch["error"][k]:
                    unreadable += 1
                    if strict:
                        raise RadlabDataError(paths[index], f"{batch['error'][k]} (--strict)")
                    warn(f"{batch['error'][k]}; written with no box")
                    rows.append((patient, Prediction(np.zeros((0, 4)), np.zeros(0))))
                    continue
                found = detections[k]
                boxes = to_original(found["boxes"].cpu().numpy(), config.data.image_size, batch["size"][k])
                kept, scores = select(
                    boxes,
                    found["scores"].cpu().numpy(),
                    threshold,
                    post["relative_prune"],
                    float(weights[k]) if use_global else None,
                )
                rows.append((patient, Prediction(kept, scores)))
    if unreadable == len(rows):
        raise nothing_read(input_dir, len(rows), "DICOM files")
    write_submission(output_csv, rows)
    return PredictionSummary(
        len(rows), sum(len(p.scores) > 0 for _, p in rows), sum(len(p.scores) for _, p in rows), unreadable
    )


def describe(summary: PredictionSummary) -> str:
    """One human line about a finished prediction."""
    head = f"{summary.images} images: {summary.boxes} boxes in {summary.with_boxes} images"
    return summary_line(head, (summary.unreadable, "unreadable"))


def load_run(run_dir: str | Path, engine: str = "torch") -> Loaded:
    """The config and trained detector of a run (safetensors only); with `engine` onnx or int8 its network
    runs from RUN/model.onnx or model.int8.onnx (`radlab export`)."""
    from radlab.tasks.pneumonia import TASK

    run = RunDir(Path(run_dir))
    run.require_model()
    config: PneumoniaConfig = TASK.run_config(run.root)
    model = load_trained(PneumoniaDetector(config, initialise=False), run.weights, config.model.backbone)
    network = engine_model(model, run.root, engine)
    if not isinstance(network, ExportedModel):
        return config, model
    size = config.data.image_size
    if network.metadata.get("image_size") != str(size):
        raise RadlabDataError(network.path, f"was exported for another image size than {size}; export again")
    return config, EngineDetector(network, model, [tuple(s) for s in json.loads(network.metadata["level_shapes"])])


def calibration_batches(
    root: Path, ids: Sequence[str], size: int, count: int, seed: int, batch: int = 4
) -> Iterator[np.ndarray]:
    """`count` training images (a seeded draw among `ids`), decoded and resized as predict does, as float32
    batches; unreadable images are left out."""
    chosen = sorted(np.random.default_rng(seed).permutation(len(ids))[:count])
    dataset = DicomBoxDataset([root / TRAIN_IMAGES / f"{ids[i]}.dcm" for i in chosen], DetectionTransform(size))
    return readable_batches(dataset, batch, collate_detection)


def _held_out_ids(run: RunDir) -> list[str]:
    return sorted(run.read_json("split.json")["valid"])


def export_parts(run: RunDir, loaded: Loaded, root: Path | None, held_out_apart: bool) -> list[ExportPart]:
    """The detector's network, calibrated on training images (the run's held-out fold left out when the
    engines are then compared on it)."""
    config, detector = loaded
    size = config.data.image_size
    valid = set(_held_out_ids(run)) if root is not None and held_out_apart else set()

    def calibrate(count: int) -> Iterator[np.ndarray]:
        assert root is not None  # int8 export asks for calibration only with the training data known
        ids = sorted(set(read_box_labels(root / TRAIN_LABELS)) - valid)
        return calibration_batches(root, ids, size, count, config.train.seed)

    assert isinstance(detector, PneumoniaDetector)  # loaded with the torch engine
    return [
        ExportPart(
            run.root,
            DenseDetector(detector),
            torch.rand(2, 1, size, size) * 255,
            calibrate,
            outputs=DenseDetector.outputs,
            metadata=export_metadata(detector, size),
        )
    ]


def held_out(run: RunDir, root: Path, scratch: Path) -> HeldOut:
    """The held-out fold (up to VALIDATION_IMAGES) predicted by an engine: the official mAP, and each image's
    most confident box score (0 for an image with no box) to compare against torch."""
    ids = _held_out_ids(run)[:VALIDATION_IMAGES]
    folder = scratch / "images"
    folder.mkdir()
    for patient in ids:
        os.symlink((root / TRAIN_IMAGES / f"{patient}.dcm").resolve(), folder / f"{patient}.dcm")
    truth = scratch / "truth.csv"
    lines = (root / TRAIN_LABELS).read_text(encoding="utf-8").splitlines()  # the official labels, these ids only
    chosen = set(ids)
    kept = [line for line in lines[1:] if line.split(",", 1)[0] in chosen]
    atomic_write_text(truth, "\n".join([",".join(LABELS_HEADER), *kept]) + "\n")

    calls = itertools.count()

    def predict(
        engine: str, models: Sequence[Path] | None = None, device: str = "cpu"
    ) -> tuple[float | None, np.ndarray]:
        out = scratch / f"{engine}-{next(calls)}.csv"
        predict_folder(folder, out, list(models or [run.root]), engine=engine, num_workers=0, device=device)
        predictions = read_submission(out)
        top = np.array([predictions[p].scores.max(initial=0.0) for p in ids])
        return evaluate_files(truth, out)["mAP"], top

    return HeldOut(predict, {"validation_images": len(ids)})


EXPORT = ExportSpec(parts=export_parts, held_out=held_out, metric="mAP")
