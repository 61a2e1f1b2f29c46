"""MURA's part of `radlab report`: study-level curves, kappa per study type beside the paper, a CAM gallery."""

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
from radlab.tasks.mura.evaluate import GROUPS
from radlab.tasks.mura.explain import MuraExplainer

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


def _interval(entry: dict) -> str:
    if entry.get("kappa") is None:
        return "—"
    return f"{entry['kappa']:.3f} ({entry['kappa_lower']:.3f}, {entry['kappa_upper']:.3f})"


def sections(run_dir: str | Path) -> list[Section]:
    """Study-type table, ROC / PR, confusion matrix and the most confident right and wrong studies."""
    run = RunDir(Path(run_dir))
    metrics = json.loads(run.metrics.read_text(encoding="utf-8")) if run.metrics.is_file() else {}
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
        Section(
            "Kappa per study type (validation)",
            table_html(
                COLUMNS,
                rows,
            )
            + paragraph(
                f"Epoch {metrics.get('epoch')}; studies are abnormal when the {metrics.get('pooling', 'mean')} of "
                f"their image probabilities exceeds {threshold}. The paper's figures are on the hidden test set."
            ),
        )
    ]
    cases_path = run.file(CASES_FILE)
    if not cases_path.is_file():
        return [*found, Section("Validation cases", paragraph(f"{cases_path} is missing; retrain to get it."))]
    table = read_case_table(cases_path)
    found += classifier_sections(table, threshold)
    explainer = MuraExplainer(run.root)
    found.append(case_gallery(table, "abnormal", threshold, lambda row: explainer.explain_image(table.inputs[row])))
    return found
