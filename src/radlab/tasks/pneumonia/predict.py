"""`radlab pneumonia predict`: a folder of `<patientId>.dcm` in, the Kaggle submission out.

CPU first (seed 003 runs this model on a low-power board): batched and streaming over a bounded loader,
a progress bar on a terminal, boxes mapped back to each image's original pixels. One row per DICOM: an
unreadable file gets an empty prediction and a warning (or an error with `strict`). Several runs (fold
models) are averaged as the recipe does, per anchor: class probabilities and box centres by the mean, box
sizes by P20 + (P20 - P80) x 0.9 over the models, which shrinks boxes where the models disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radlab.core.console import warn
from radlab.core.engine.ensemble import expand_members
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabConfigError, RadlabDataError
from radlab.core.infer import iterate_batches, pick_device
from radlab.core.io.dicom import list_dicom_folder
from radlab.tasks.pneumonia.config import PneumoniaConfig
from radlab.tasks.pneumonia.data import DetectionTransform, DicomBoxDataset, collate_detection
from radlab.tasks.pneumonia.formats import Prediction, write_submission
from radlab.tasks.pneumonia.model import PneumoniaDetector, load_detector, logit, opacity_weight
from radlab.tasks.pneumonia.postprocess import select, to_original

SIZE_SCALE = 0.9


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
    batch_size: int | None = None,
    num_workers: int | None = None,
    strict: bool = False,
    device: str = "auto",
    engine: str = "torch",
    loaded: Sequence[tuple[PneumoniaConfig, PneumoniaDetector]] | None = None,
) -> PredictionSummary:
    """Write one submission row per `*.dcm` in `input_dir` (sorted by name). `engine` is "torch", or "onnx" /
    "int8" for the files `radlab export` wrote (ONNX Runtime, CPU). `loaded` (load_detector of each run)
    skips loading, for repeated calls."""
    run_dirs = expand_members(run_dirs)  # a --folds ensemble counts as its folds
    paths = list_dicom_folder(input_dir)
    loaded = loaded if loaded is not None else [load_detector(run, engine) for run in run_dirs]
    config = loaded[0][0]
    for other, _ in loaded[1:]:
        if (other.data.image_size, other.model.levels) != (config.data.image_size, config.model.levels):
            raise RadlabConfigError("ensembled runs must share data.image_size and model.levels")
    posts = [RunDir(Path(run)).read_json("postprocess.json") for run in run_dirs]
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
    write_submission(output_csv, rows)
    return PredictionSummary(
        len(rows), sum(len(p.scores) > 0 for _, p in rows), sum(len(p.scores) for _, p in rows), unreadable
    )


def describe(summary: PredictionSummary) -> str:
    text = f"{summary.images} images: {summary.boxes} boxes in {summary.with_boxes} images"
    return text + (f"; {summary.unreadable} unreadable" if summary.unreadable else "")
