"""`radlab explain mura`: the abnormality CAM of each radiograph, over the original image at its size."""

from __future__ import annotations

from pathlib import Path

import torch

from radlab.core.explain import Explanation, class_activation_maps, explain_each, overlay_heatmap
from radlab.core.explain.overlay import map_to_original
from radlab.core.io.images import read_image
from radlab.core.io.inputs import input_files
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


def explain(input_path: Path, run_dir: Path) -> list[Explanation]:
    """CAM overlays for a radiograph or a study folder."""
    explainer = MuraExplainer(run_dir)
    paths = input_files(input_path, IMAGE_SUFFIXES, "radiograph")
    return explain_each(paths, lambda path: [explainer.explain_image(path)])
