"""What RSNA Pneumonia shows of a run: `radlab report`'s sections (mAP against score threshold per epoch, a
gallery of predicted (red, with scores) against true (green) boxes on validation images) and `radlab
explain`'s boxes with their scores over the chest X-ray at its size.

Explain's boxes are those `predict` would write (the run's chosen score threshold and pruning); true boxes,
when given, are drawn in green beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import RootModel

from radlab.core.config import StrictModel
from radlab.core.engine.callbacks import read_history
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.explain import Explanation, draw_boxes, explain_each
from radlab.core.io.dicom import read_dicom_image
from radlab.core.io.inputs import input_files
from radlab.core.report import CaseTable, Section, figure_html, gallery, image_html, paragraph, table_html
from radlab.core.report.plots import sweep_curves
from radlab.tasks.pneumonia.data import DetectionTransform, xywh_to_xyxy
from radlab.tasks.pneumonia.formats import DETECTIONS_FILE, SWEEP_FILE
from radlab.tasks.pneumonia.model import PostprocessFile, opacity_weight, select, to_original
from radlab.tasks.pneumonia.predict import load_run

PREDICTED, TRUE = (255, 64, 64), (64, 220, 64)
WINNING_SIMPLE_MODEL_MAP = 0.253  # 1st-place team's simple model, stage 2 private leaderboard (its README)


def sections(run: RunDir, metrics: dict[str, Any], cases: CaseTable | None) -> list[Section]:
    """Sweep curves, the kept epoch's operating point, and validation images with both kinds of box (from
    RUN/valid_detections.json: a detector has no case table, so `cases` is not used)."""
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
    try:
        detections = run.read_json(DETECTIONS_FILE, DetectionsFile)
    except RadlabDataError as error:
        return [*found, Section("Validation boxes", paragraph(f"{error}; retrain to get it again."))]
    found.append(Section("Predicted (red) against true (green) boxes, validation", _gallery(detections)))
    return found


class ValidationDetection(StrictModel):
    """One image of RUN/valid_detections.json: its file, true boxes, and the kept boxes with their scores."""

    input: str
    truth: list[tuple[float, float, float, float]]
    boxes: list[tuple[float, float, float, float]]
    scores: list[float]


DetectionsFile = RootModel[list[ValidationDetection]]


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


class PneumoniaExplainer:
    """A run's detector and post-processing, drawing one image at a time."""

    def __init__(self, run_dir: str | Path) -> None:
        self.config, self.model = load_run(run_dir)
        self.model.eval()
        self.post = RunDir(Path(run_dir)).read_json("postprocess.json", PostprocessFile)
        self.transform = DetectionTransform(self.config.data.image_size)

    @torch.no_grad()
    def detect(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Boxes (x, y, w, h) in original pixels, their scores, and the global head's opacity weight."""
        image, _ = self.transform(pixels, np.zeros((0, 4)))
        out = self.model(image.unsqueeze(0), detect=True)
        found = out["detections"][0]
        weight = float(opacity_weight(out["global"])[0])
        boxes = to_original(found["boxes"].numpy(), self.config.data.image_size, pixels.shape)
        kept, scores = select(
            boxes,
            found["scores"].numpy(),
            float(self.post["score_threshold"]),
            self.post["relative_prune"],
            weight if self.post["use_global"] else None,
        )
        return kept, scores, weight

    def explain_image(self, path: str | Path, truth: np.ndarray | None = None) -> Explanation:
        pixels = read_dicom_image(path)
        boxes, scores, weight = self.detect(pixels)
        picture = pixels
        if truth is not None and len(truth):
            picture = draw_boxes(picture, xywh_to_xyxy(np.asarray(truth).reshape(-1, 4)), colour=TRUE)
        picture = draw_boxes(picture, xywh_to_xyxy(boxes), scores.tolist(), colour=PREDICTED)
        caption = f"{len(boxes)} predicted box(es) in red" + (
            f", {len(truth)} true in green" if truth is not None else ""
        )
        caption += f"; p(opacity) from the global head {weight:.2f}"
        details = {
            "input": str(path),
            "boxes_xywh": np.round(boxes, 1).tolist(),
            "scores": np.round(scores, 4).tolist(),
            "global_opacity": weight,
        }
        return Explanation(Path(path).stem, picture, caption, details)


def explain(input_path: Path, run_dir: Path) -> list[Explanation]:
    """Box overlays for one DICOM or every DICOM of a folder."""
    explainer = PneumoniaExplainer(run_dir)
    paths = input_files(input_path, (".dcm",), "DICOM image")
    return explain_each(paths, lambda path: [explainer.explain_image(path)])
