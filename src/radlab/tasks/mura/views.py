"""What MURA shows of a run: `radlab report`'s sections (kappa per study type beside the paper, curves, a CAM
gallery) and `radlab explain`'s abnormality CAM of each radiograph over the original image at its size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from radlab.core import report
from radlab.core.engine.run_dir import RunDir
from radlab.core.explain import Explanation, class_activation_maps, explain_each, overlay_heatmap
from radlab.core.explain.overlay import map_to_original
from radlab.core.io.images import read_image
from radlab.core.io.inputs import input_files
from radlab.core.models import ImageClassifier
from radlab.core.transforms import build_image_transform
from radlab.tasks.mura import MuraConfig
from radlab.tasks.mura.evaluate import GROUPS
from radlab.tasks.mura.model import load_model

# Paper Table 2 (test set; kappa means): three radiologists and the model (= the official baseline scores).
PAPER_KAPPA = {
    "Elbow": (0.850, 0.710, 0.719, 0.710),
    "Finger": (0.304, 0.403, 0.410, 0.389),
    "Forearm": (0.796, 0.802, 0.798, 0.737),
    "Hand": (0.661, 0.927, 0.789, 0.851),
    "Humerus": (0.867, 0.733, 0.933, 0.600),
    "Shoulder": (0.864, 0.791, 0.864, 0.729),
    "Wrist": (0.791, 0.931, 0.931, 0.931),
    "Overall": (0.731, 0.763, 0.778, 0.705),
}

COLUMNS = [
    "study type",
    "studies",
    "kappa (official 95% interval)",
    "AUROC",
    "sensitivity",
    "specificity",
    "paper model (test)",
    "best radiologist (test)",
]


def _interval(entry: dict[str, Any]) -> str:
    if entry.get("kappa") is None:
        return "—"
    return f"{entry['kappa']:.3f} ({entry['kappa_lower']:.3f}, {entry['kappa_upper']:.3f})"


def sections(run: RunDir, metrics: dict[str, Any], cases: report.CaseTable | None) -> list[report.Section]:
    """Study-type table, ROC / PR, confusion matrix and the most confident right and wrong studies."""
    details = metrics.get("study_level", {})
    threshold = float(metrics.get("threshold", 0.5))
    rows = []
    for group in GROUPS:
        entry = details.get(group)
        if entry is None:
            continue
        paper = PAPER_KAPPA[group]
        scores = [entry.get("auroc"), entry.get("sensitivity"), entry.get("specificity")]
        rows.append([group, entry["n"], _interval(entry), *scores, paper[3], max(paper[:3])])
    found = [
        report.Section(
            "Kappa per study type (validation)",
            report.table_html(
                COLUMNS,
                rows,
            )
            + report.paragraph(
                f"Epoch {metrics.get('epoch')}; studies are abnormal when the {metrics.get('pooling', 'mean')} of "
                f"their image probabilities exceeds {threshold}. The paper's figures are on the hidden test set."
            ),
        )
    ]
    if cases is None:
        return [*found, report.missing_cases(run)]
    found += report.classifier_sections(cases, threshold)
    explainer = MuraExplainer(run.root)
    found.append(
        report.case_gallery(cases, "abnormal", threshold, lambda row: explainer.explain_image(cases.inputs[row]))
    )
    return found


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
