"""What ICH shows of a run: `radlab report`'s sections (log loss per subtype for both stages, curves per
subtype, a CAM gallery) and `radlab explain`'s view of where the slice CNN sees each haemorrhage, over the
brain window at the slice's size.

The sequence model refines the slice CNN's embeddings across neighbouring slices and has no spatial map; the
pictures therefore show the slice CNN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core import report
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.explain import Explanation, class_activation_maps, explain_each, overlay_heatmap
from radlab.core.io.dicom import read_dicom
from radlab.core.io.inputs import input_files
from radlab.core.metrics import roc_auc
from radlab.core.models import ImageClassifier, load_trained
from radlab.core.transforms.windowing import (
    ICH_WINDOWS,
    resize_square,
    stored_and_rescale,
    uncrop_map,
    window_stack,
    windowed_square,
)
from radlab.tasks.ich import IchConfig
from radlab.tasks.ich.formats import SUBTYPES
from radlab.tasks.ich.model import build_slice_model


def sections(run: RunDir, metrics: dict[str, Any], cases: report.CaseTable | None) -> list[report.Section]:
    """Per-subtype table (slice CNN against sequence model), ROC / PR, confusion, most confident calls."""
    rows = []
    for k, name in enumerate(("weighted", *SUBTYPES)):
        key = "weighted_log_loss" if name == "weighted" else f"{name}_log_loss"
        auroc = roc_auc(cases.truth[:, k - 1], cases.probs[:, k - 1]) if cases is not None and k else None
        rows.append([name, metrics.get("slice_cnn", {}).get(key), metrics.get("sequence", {}).get(key), auroc])
    found = [
        report.Section(
            "Log loss per subtype (validation)",
            report.table_html(["subtype", "slice CNN log loss", "sequence model log loss", "sequence AUROC"], rows)
            + report.paragraph(
                f"{metrics.get('validation_images', '?')} validation images; the sequence model averages "
                f"{metrics.get('sequence_epochs_averaged', '?')} epoch snapshots. Weighted: any counts twice. "
                "2nd-place single model: 0.046 (private leaderboard)."
            ),
        )
    ]
    skipped = list(metrics.get("skipped_files") or [])
    skipped += [
        [image, "validation slice whose pixels do not decode"]
        for image in metrics.get("unreadable_validation_images") or []
    ]
    if skipped:
        found.append(report.Section("Files left out", report.table_html(["file", "reason"], skipped)))
    if cases is None:
        return [*found, report.missing_cases(run)]
    found += report.classifier_sections(cases, 0.5)
    explainer = IchExplainer(run.root)
    found.append(report.case_gallery(cases, "any", 0.5, lambda row: explainer.explain_slice(cases.inputs[row])))
    return found


class IchExplainer:
    """The slice classifier of a run, explaining one DICOM slice at a time."""

    def __init__(self, run_dir: str | Path) -> None:
        from radlab.tasks.ich import TASK

        run = RunDir(Path(run_dir))
        weights = run.root / "slice" / "model.safetensors"
        for path in (run.config, weights):
            if not path.is_file():
                raise RadlabDataError(path, "missing: not a trained radlab ICH run (train first)")
        self.config: IchConfig = TASK.run_config(run.root)
        self.model: ImageClassifier = build_slice_model(self.config, initialise=False)
        load_trained(self.model, weights, self.config.model.backbone)
        self.model.eval()

    def explain_slice(self, path: str | Path, subtype: str | None = None) -> Explanation:
        """The CAM of `subtype` (default: the most likely haemorrhage subtype) on the brain window."""
        data = self.config.data
        ds, stored = read_dicom(Path(path))
        if stored.ndim != 2:
            raise RadlabDataError(path, f"expected one grayscale slice, got pixel shape {stored.shape}")
        values, slope, intercept = stored_and_rescale(ds, stored, data.pixel_representation_fix)
        view, box = windowed_square(values, slope, intercept, ICH_WINDOWS, data.crop)  # as training sees it
        pixels = torch.from_numpy(np.ascontiguousarray(resize_square(view, data.image_size).transpose(2, 0, 1)))
        result = class_activation_maps(self.model, pixels.unsqueeze(0))
        probs = 1.0 / (1.0 + np.exp(-result.logits[0]))
        k = SUBTYPES.index(subtype) if subtype else int(np.argmax(probs[:5]))
        brain = window_stack(values, slope, intercept, ICH_WINDOWS[:1])[..., 0]
        cam = uncrop_map(result.maps[0, k], box, brain.shape)
        shown = ", ".join(f"{name} {p:.2f}" for name, p in zip(SUBTYPES, probs, strict=True))
        caption = f"{result.method.upper()} of {SUBTYPES[k]} on the brain window; slice CNN: {shown}"
        details = {
            "input": str(path),
            "shown": SUBTYPES[k],
            "method": result.method,
            "slice_cnn": dict(zip(SUBTYPES, map(float, probs), strict=True)),
        }
        return Explanation(f"{Path(path).stem}.{SUBTYPES[k]}", overlay_heatmap(brain, cam), caption, details)


def explain(input_path: Path, run_dir: Path) -> list[Explanation]:
    """CAM overlays for one DICOM slice or every slice of a folder."""
    explainer = IchExplainer(run_dir)
    paths = input_files(input_path, (".dcm",), "DICOM slice")
    return explain_each(paths, lambda path: [explainer.explain_slice(path)])
