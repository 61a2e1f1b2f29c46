"""ICH's part of `radlab report`: log loss per subtype for both stages, curves per subtype, a CAM gallery."""

from __future__ import annotations

import json
from pathlib import Path

from radlab.core.engine.run_dir import RunDir
from radlab.core.metrics import roc_auc
from radlab.core.report import (
    CASES_FILE,
    Section,
    case_gallery,
    classifier_sections,
    paragraph,
    read_case_table,
    table_html,
)
from radlab.tasks.ich.explain import IchExplainer
from radlab.tasks.ich.formats import SUBTYPES


def sections(run_dir: str | Path) -> list[Section]:
    """Per-subtype table (slice CNN against sequence model), ROC / PR, confusion, most confident calls."""
    run = RunDir(Path(run_dir))
    metrics = json.loads(run.metrics.read_text(encoding="utf-8")) if run.metrics.is_file() else {}
    cases_path = run.file(CASES_FILE)
    table = read_case_table(cases_path) if cases_path.is_file() else None
    rows = []
    for k, name in enumerate(("weighted", *SUBTYPES)):
        key = "weighted_log_loss" if name == "weighted" else f"{name}_log_loss"
        auroc = roc_auc(table.truth[:, k - 1], table.probs[:, k - 1]) if table is not None and k else None
        rows.append([name, metrics.get("slice_cnn", {}).get(key), metrics.get("sequence", {}).get(key), auroc])
    found = [
        Section(
            "Log loss per subtype (validation)",
            table_html(["subtype", "slice CNN log loss", "sequence model log loss", "sequence AUROC"], rows)
            + paragraph(
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
        found.append(Section("Files left out", table_html(["file", "reason"], skipped)))
    if table is None:
        return [*found, Section("Validation cases", paragraph(f"{cases_path} is missing; retrain to get it."))]
    found += classifier_sections(table, 0.5)
    explainer = IchExplainer(run.root)
    found.append(case_gallery(table, "any", 0.5, lambda row: explainer.explain_slice(table.inputs[row])))
    return found
