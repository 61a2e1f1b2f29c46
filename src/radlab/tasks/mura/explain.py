"""`radlab explain mura`: the abnormality CAM of each radiograph, over the original image at its size."""

from __future__ import annotations

from pathlib import Path

import torch

from radlab.core.errors import RadlabDataError
from radlab.core.explain import Explanation, class_activation_maps, explain_each, overlay_heatmap
from radlab.core.explain.overlay import map_to_original
from radlab.core.io.images import read_image
from radlab.core.models import ImageClassifier
from radlab.core.transforms import build_image_transform
from radlab.tasks.mura.config import MuraConfig
from radlab.tasks.mura.model import load_model

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class MuraExplainer:
    """Loads a run once, then explains any number of radiographs."""

    def __init__(self, run_dir: str | Path) -> None:
        self.config: MuraConfig
        self.model: ImageClassifier
        self.config, self.model = load_model(run_dir)
        data = self.config.data
        self.transform = build_image_transform(data.image_size, resize=data.resize)

    def explain_image(self, path: str | Path) -> Explanation:
        original = read_image(path)
        pixels = self.transform(original).unsqueeze(0)
        result = class_activation_maps(self.model, pixels, classes=[0])
        probability = float(torch.sigmoid(torch.tensor(result.logits[0, 0])))
        height, width = original.shape[:2]
        cam = map_to_original(result.maps[0, 0], height, width, self.config.data.image_size, self.config.data.resize)
        caption = f"image p(abnormal) {probability:.3f}, {result.method.upper()} of abnormal"
        details = {"input": str(path), "p_abnormal": probability, "method": result.method}
        return Explanation(Path(path).stem, overlay_heatmap(original, cam), caption, details)


def explain_inputs(input_path: Path) -> list[Path]:
    """One radiograph, or every radiograph of a study folder."""
    if input_path.is_dir():
        found = sorted(p for p in input_path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise RadlabDataError(input_path, "holds no .png / .jpg radiograph")
        return found
    if not input_path.is_file():
        raise RadlabDataError(input_path, "no such file or folder")
    return [input_path]


def explain(input_path: Path, run_dir: Path) -> list[Explanation]:
    """CAM overlays for a radiograph or a study folder."""
    explainer = MuraExplainer(run_dir)
    return explain_each(explain_inputs(input_path), lambda path: [explainer.explain_image(path)])
