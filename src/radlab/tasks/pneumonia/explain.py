"""`radlab explain pneumonia`: the detector's boxes with their scores over the chest X-ray at its size.

Boxes are those `predict` would write (the run's chosen score threshold and pruning); true boxes, when
given, are drawn in green beside them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from radlab.core.engine.run_dir import RunDir
from radlab.core.explain import Explanation, draw_boxes, explain_each
from radlab.core.io.dicom import read_dicom_image
from radlab.core.io.inputs import input_files
from radlab.tasks.pneumonia.data import DetectionTransform, xywh_to_xyxy
from radlab.tasks.pneumonia.model import load_detector, opacity_weight
from radlab.tasks.pneumonia.postprocess import select, to_original

PREDICTED, TRUE = (255, 64, 64), (64, 220, 64)


class PneumoniaExplainer:
    """A run's detector and post-processing, drawing one image at a time."""

    def __init__(self, run_dir: str | Path) -> None:
        self.config, self.model = load_detector(run_dir)
        self.model.eval()
        self.post = RunDir(Path(run_dir)).read_json("postprocess.json")
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
        picture = draw_boxes(picture, xywh_to_xyxy(boxes), scores, colour=PREDICTED)
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
