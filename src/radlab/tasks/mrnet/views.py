"""What MRNet shows of a run: `radlab report`'s sections (AUROC per task and plane beside the fused model,
curves, max-slice CAM galleries) and `radlab explain`'s picture for each network reading a series.

An exam's logit is the head applied to the max over slices of the pooled features. The picture shows the
slice whose own logit (the head applied to that slice's features alone) is highest, with the plain CAM of
that slice (exact for the global-average-pool head).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core import report
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.explain import Explanation, explain_each, feature_map_cam, overlay_heatmap, spatial_features
from radlab.core.explain.overlay import resize_map
from radlab.core.io.inputs import input_files
from radlab.core.transforms import VolumeTransform
from radlab.core.transforms.volume import minmax_to_uint8
from radlab.tasks.mrnet import PLANES, SERIES_MEAN, SERIES_STD
from radlab.tasks.mrnet.data import read_series
from radlab.tasks.mrnet.formats import KEYS, PAPER_AUROC
from radlab.tasks.mrnet.model import SeriesClassifier
from radlab.tasks.mrnet.predict import load_run


def sections(run: RunDir, metrics: dict[str, Any], cases: report.CaseTable | None) -> list[report.Section]:
    """Per task: AUROC of each plane's network and of the logistic-regression fusion; curves; galleries."""
    per_plane = metrics.get("per_plane", {})
    fused = metrics.get("valid", {})
    rows = [
        [task, *(per_plane[task].get(p) for p in PLANES), fused.get(KEYS[task]), PAPER_AUROC[task]]
        for task in per_plane
    ]
    found = [
        report.Section(
            "AUROC per task and plane (validation)",
            report.table_html(["task", *PLANES, "fused (logistic regression)", "paper (test)"], rows)
            + report.paragraph(f"Average AUROC of the fused model: {fused.get('Average_AUROC', float('nan')):.4f}."),
        )
    ]
    if cases is None:
        return [*found, report.missing_cases(run)]
    found += report.classifier_sections(cases, 0.5)
    explainer = MRNetExplainer(run.root)
    for task in cases.labels:
        planes = {p: v for p, v in per_plane.get(task, {}).items() if v is not None}
        plane = max(planes, key=planes.__getitem__) if planes else PLANES[0]

        def picture(row: int, task: str = task, plane: str = plane) -> Explanation:
            first = Path(cases.inputs[row])
            series = first.parent.parent / plane / first.name
            return explainer.explain_series(series, plane, (task,))[0]

        gallery = report.case_gallery(cases, task, 0.5, picture, count=3)
        found.append(report.Section(f"{gallery.title} (the {plane} network, its strongest plane)", gallery.body))
    return found


class MRNetExplainer:
    """The networks of a run, by plane; explains one series at a time."""

    def __init__(self, run_dir: str | Path) -> None:
        loaded = load_run(run_dir)
        self.config = loaded.config
        self.models = loaded.units
        self.transform = VolumeTransform(self.config.data.image_size)

    def explain_series(self, path: str | Path, plane: str, tasks: tuple[str, ...] | None = None) -> list[Explanation]:
        """One picture per (network, task) reading `plane`: the max slice at its original size, with its CAM."""
        volume = read_series(path)
        original = minmax_to_uint8(volume)
        slices = self.transform(volume)
        shown = []
        for unit, model in self.models.items():
            if unit.plane != plane:
                continue
            for t, task in enumerate(unit.tasks):
                if tasks is not None and task not in tasks:
                    continue
                shown.append(self._picture(Path(path), model, slices, original, unit.plane, task, t))
        if not shown:
            raise RadlabDataError(path, f"this run has no network for the {plane} plane")
        return shown

    @torch.no_grad()
    def _picture(
        self,
        path: Path,
        model: SeriesClassifier,
        slices: torch.Tensor,
        original: np.ndarray,
        plane: str,
        task: str,
        t: int,
    ) -> Explanation:
        x = ((slices.float() - SERIES_MEAN) / SERIES_STD).expand(-1, 3, -1, -1)
        maps = feature_map_cam(spatial_features(model.features, x), model.head.weight[t : t + 1], model.head.bias[t:])
        per_slice = maps.mean(dim=(2, 3))[:, 0]
        best = int(per_slice.argmax())
        exam_logit = float(model(slices, torch.tensor([len(slices)]))[0, t])
        cam = maps[best, 0].numpy()
        cam = (cam - cam.min()) / max(float(cam.max() - cam.min()), 1e-12)
        height, width = original.shape[1:]
        picture = overlay_heatmap(original[best], resize_map(cam, height, width))
        probability = 1.0 / (1.0 + np.exp(-exam_logit))
        caption = f"{plane}, {task}: p {probability:.3f}; slice {best + 1} of {len(slices)} gave the max"
        details = {"input": str(path), "plane": plane, "task": task, "probability": probability, "slice": best}
        return Explanation(f"{path.stem}.{plane}.{task}", picture, caption, details)


def plane_of_path(path: Path) -> str:
    """The plane of a series, from its folder name (MRNet's layout: SPLIT/PLANE/NNNN.npy), else from its
    file name when that names one plane (`0001_axial.npy`, what `radlab serve` is sent)."""
    for part in reversed(path.resolve().parts[:-1]):
        if part in PLANES:
            return part
    named = [plane for plane in PLANES if plane in path.name.lower()]
    if len(named) == 1:
        return named[0]
    raise RadlabDataError(
        path, f"cannot tell its plane: its folder (or else its name) should say one of {', '.join(PLANES)}"
    )


def explain(input_path: Path, run_dir: Path) -> list[Explanation]:
    """Max-slice CAMs for one series (.npy) or every series of a plane folder."""
    explainer = MRNetExplainer(run_dir)
    paths = input_files(input_path, (".npy",), "series")
    return explain_each(paths, lambda path: explainer.explain_series(path, plane_of_path(path)))
