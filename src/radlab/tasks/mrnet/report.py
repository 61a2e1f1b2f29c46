"""MRNet's part of `radlab report`: AUROC per task and plane beside the fused model, max-slice CAM galleries."""

from __future__ import annotations

import json
from pathlib import Path

from radlab.core.engine.run_dir import RunDir
from radlab.core.report import (
    CASES_FILE,
    Section,
    case_gallery,
    classifier_sections,
    paragraph,
    read_case_table,
    table_html,
)
from radlab.tasks.mrnet.explain import MRNetExplainer
from radlab.tasks.mrnet.formats import PLANES

PAPER_AUROC = {"abnormal": 0.937, "acl": 0.965, "meniscus": 0.847}
OFFICIAL_KEYS = {"abnormal": "Abnormal_AUROC", "acl": "ACL_AUROC", "meniscus": "Meniscus_AUROC"}


def sections(run_dir: str | Path) -> list[Section]:
    """Per task: AUROC of each plane's network and of the logistic-regression fusion; curves; galleries."""
    run = RunDir(Path(run_dir))
    metrics = json.loads(run.metrics.read_text(encoding="utf-8")) if run.metrics.is_file() else {}
    per_plane = metrics.get("per_plane", {})
    fused = metrics.get("valid", {})
    rows = [
        [task, *(per_plane[task].get(p) for p in PLANES), fused.get(OFFICIAL_KEYS[task]), PAPER_AUROC[task]]
        for task in per_plane
    ]
    found = [
        Section(
            "AUROC per task and plane (validation)",
            table_html(["task", *PLANES, "fused (logistic regression)", "paper (test)"], rows)
            + paragraph(f"Average AUROC of the fused model: {fused.get('Average_AUROC', float('nan')):.4f}."),
        )
    ]
    cases_path = run.file(CASES_FILE)
    if not cases_path.is_file():
        return [*found, Section("Validation cases", paragraph(f"{cases_path} is missing; retrain to get it."))]
    table = read_case_table(cases_path)
    found += classifier_sections(table, 0.5)
    explainer = MRNetExplainer(run.root)
    for task in table.labels:
        planes = {p: v for p, v in per_plane.get(task, {}).items() if v is not None}
        plane = max(planes, key=planes.__getitem__) if planes else PLANES[0]

        def picture(row: int, task: str = task, plane: str = plane):
            first = Path(table.inputs[row])
            series = first.parent.parent / plane / first.name
            return explainer.explain_series(series, plane, (task,))[0]

        gallery = case_gallery(table, task, 0.5, picture, count=3)
        found.append(Section(f"{gallery.title} (the {plane} network, its strongest plane)", gallery.body))
    return found
