"""Pneumonia's part of `radlab report`: mAP against score threshold per epoch, and a gallery of predicted
(red, with scores) against true (green) boxes on validation images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from radlab.core.engine.callbacks import read_history
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.explain import draw_boxes
from radlab.core.io.dicom import read_dicom_image
from radlab.core.report import Section, figure_html, gallery, image_html, paragraph, table_html
from radlab.core.report.plots import sweep_curves
from radlab.tasks.pneumonia.data import xywh_to_xyxy
from radlab.tasks.pneumonia.explain import PREDICTED, TRUE
from radlab.tasks.pneumonia.recipe import DETECTIONS_FILE, SWEEP_FILE

WINNING_SIMPLE_MODEL_MAP = 0.253  # 1st-place team's simple model, stage 2 private leaderboard (its README)


def sections(run_dir: str | Path) -> list[Section]:
    """Sweep curves, the kept epoch's operating point, and validation images with both kinds of box."""
    run = RunDir(Path(run_dir))
    metrics = json.loads(run.metrics.read_text(encoding="utf-8")) if run.metrics.is_file() else {}
    rows = read_history(run.file(SWEEP_FILE))
    figure = sweep_curves(rows, "mAP (IoU 0.40-0.75)")
    summary = table_html(
        ["kept epoch", "score threshold", "validation mAP", "1st place, simple model (private LB)"],
        [[metrics.get("epoch"), metrics.get("score_threshold"), metrics.get("map"), WINNING_SIMPLE_MODEL_MAP]],
    )
    found = [Section("mAP against score threshold", (figure_html(figure) if figure else "") + summary)]
    path = run.file(DETECTIONS_FILE)
    if not path.is_file():
        return [*found, Section("Validation boxes", paragraph(f"{path} is missing; retrain to get it."))]
    detections = json.loads(path.read_text(encoding="utf-8"))
    found.append(Section("Predicted (red) against true (green) boxes, validation", _gallery(detections)))
    return found


def _gallery(detections: list[dict[str, Any]], count: int = 4) -> str:
    def top_score(d: dict[str, Any]) -> float:
        return max(d["scores"], default=0.0)

    with_truth = sorted((d for d in detections if d["truth"] and d["boxes"]), key=top_score, reverse=True)
    false_alarms = sorted((d for d in detections if not d["truth"] and d["boxes"]), key=top_score, reverse=True)
    missed = [d for d in detections if d["truth"] and not d["boxes"]]
    parts = []
    for title, chosen in (
        ("opacities found", with_truth[:count]),
        ("boxes on images without opacity", false_alarms[: count // 2]),
        ("opacities missed", missed[: count // 2]),
    ):
        items = [_picture(d) for d in chosen]
        parts.append(f"<h3>{title}</h3>" + (gallery(items) if items else paragraph("none")))
    return "".join(parts)


def _picture(detection: dict[str, Any]) -> str:
    name = Path(detection["input"]).stem
    try:
        pixels = read_dicom_image(detection["input"])
    except RadlabDataError as error:
        return paragraph(str(error))
    truth = np.asarray(detection["truth"], dtype=float).reshape(-1, 4)
    boxes = np.asarray(detection["boxes"], dtype=float).reshape(-1, 4)
    picture = draw_boxes(pixels, xywh_to_xyxy(truth), colour=TRUE)
    picture = draw_boxes(picture, xywh_to_xyxy(boxes), detection["scores"], colour=PREDICTED)
    return image_html(picture, f"{name}: {len(boxes)} predicted, {len(truth)} true")
