"""The parts of a report every run has: what was trained, how training went, what it scored."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from radlab.core.calibration import read_calibration
from radlab.core.config import flat_keys, read_yaml
from radlab.core.console import warn
from radlab.core.engine.callbacks import read_history
from radlab.core.engine.ensemble import is_ensemble, read_manifest
from radlab.core.engine.run_dir import MetricsFile, RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.explain.explanation import Explanation
from radlab.core.io.atomic import atomic_write_text
from radlab.core.report.calibration import calibration_section
from radlab.core.report.cases import CASES_FILE, CaseTable, confident_cases, read_case_table
from radlab.core.report.document import (
    Section,
    figure_html,
    gallery,
    image_html,
    paragraph,
    render_document,
    table_html,
)
from radlab.core.report.plots import roc_pr_curves, training_curves

KEY_SETTINGS = (
    "task",
    "model.backbone",
    "model.pretrained",
    "data.image_size",
    "optim.lr",
    "train.batch_size",
    "train.max_epochs",
    "train.monitor",
    "train.precision",
)


def _shown(value: Any) -> Any:
    """A setting as the report's table shows it: a list as JSON, a long one as its length."""
    if isinstance(value, list):
        return f"[{len(value)} values]" if len(value) > 8 else json.dumps(value)
    return value


def run_sections(run_dir: str | Path) -> list[Section]:
    """Config summary and training curves of a run directory."""
    run = RunDir(Path(run_dir))
    config = read_yaml(run.config, "run config") if run.config.is_file() else {}
    settings = [(key, _shown(value)) for key, value in flat_keys(config).items()]
    key_settings = [(key, value) for key, value in settings if key in KEY_SETTINGS]
    body = table_html(["setting", "value"], key_settings) + (
        f"<details><summary>all {len(settings)} settings (config.yaml)</summary>"
        f"{table_html(['setting', 'value'], settings)}</details>"
    )
    sections = [Section("Configuration", body)]
    rows = read_history(run.history)
    figure = training_curves(rows)
    if figure is not None:
        seconds = sum(float(r.get("seconds") or 0) for r in rows)
        body = figure_html(figure) + paragraph(f"{len(rows)} epochs recorded, {seconds:.0f} s of training.")
        sections.append(Section("Training curves", body))
    if is_ensemble(run.root):
        sections.append(ensemble_section(run.root))
    return sections


def ensemble_section(folder: Path) -> Section:
    """The members of an ensemble run (kept epochs), each one's held-out scores and, measured the same way,
    the ensemble's beside its members'."""
    try:
        manifest = read_manifest(folder)
    except RadlabDataError as error:
        warn(f"{error}; the report leaves the ensemble out")
        return Section("Ensemble", paragraph(str(error)))
    measured = manifest.get("members_measured") or [{} for _ in manifest["members"]]
    names = sorted({n for scores in manifest.get("held_out", []) for n in scores})
    metric = sorted(manifest.get("ensemble") or {})
    columns = ["member", *[f"validation {n}" for n in names], *[f"{m} (predicted)" for m in metric]]
    rows = [
        [member, *[held.get(n) for n in names], *[got.get(m) for m in metric]]
        for member, held, got in zip(manifest["members"], manifest.get("held_out", []), measured, strict=False)
    ]
    rows.append(["the ensemble", *[None for _ in names], *[manifest["ensemble"][m] for m in metric]])
    chosen = manifest.get("selected_on", {})
    note = f"{len(manifest['members'])} {manifest.get('type', 'members')}, chosen on {json.dumps(chosen)}. "
    note += "Predicted: the held-out data predicted as `predict` would, by each member alone and by their average."
    return Section("Ensemble", table_html(columns, rows) + paragraph(note))


def classifier_sections(table: CaseTable, threshold: float | np.ndarray = 0.5) -> list[Section]:
    """ROC / PR curves and the confusion matrix per label at the operating threshold(s)."""
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=float), (len(table.labels),))
    rows = []
    for k, label in enumerate(table.labels):
        predicted = table.probs[:, k] > thresholds[k]
        truth = table.truth[:, k] == 1
        tp, fn = int((predicted & truth).sum()), int((~predicted & truth).sum())
        fp, tn = int((predicted & ~truth).sum()), int((~predicted & ~truth).sum())
        sensitivity = tp / (tp + fn) if tp + fn else None
        specificity = tn / (tn + fp) if tn + fp else None
        rows.append([label, float(thresholds[k]), tn, fp, fn, tp, sensitivity, specificity])
    confusion = table_html(
        ["label", "threshold", "TN", "FP", "FN", "TP", "sensitivity", "specificity"],
        rows,
        caption=f"confusion at the operating threshold, {len(table.cases)} validation cases",
    )
    curves = figure_html(roc_pr_curves(table.truth, table.probs, table.labels))
    return [Section("ROC and precision-recall (validation)", curves), Section("Confusion matrix", confusion)]


REPORT_FILE = "report.html"


def case_gallery(
    table: CaseTable,
    label: str,
    threshold: float,
    picture: Callable[[int], Explanation],
    count: int = 4,
) -> Section:
    """The most confident right and wrong calls for one label, each as the task's explanation picture."""
    right, wrong = confident_cases(table, table.labels[table.labels.index(label)], threshold, count)
    k = table.labels.index(label)
    parts = []
    for title, rows in (("most confident right", right), ("most confident wrong", wrong)):
        items = []
        for row in rows:
            try:
                shown = picture(row)
            except RadlabDataError as error:
                items.append(paragraph(f"{table.cases[row]}: {error}"))
                continue
            verdict = f"truth {table.truth[row, k]}, p {table.probs[row, k]:.3f}"
            items.append(image_html(shown.image, f"{_short(table.cases[row])} ({verdict}): {shown.caption}"))
        parts.append(f"<h3>{html.escape(title)}</h3>" + (gallery(items) if items else paragraph("none")))
    return Section(f"Gallery: {label}, with what the model looked at", "".join(parts))


def _short(case: str, keep: int = 48) -> str:
    return case if len(case) <= keep else "…" + case[-keep:]


def missing_cases(run: RunDir) -> Section:
    """What a report shows in place of the validation cases a run does not have."""
    return Section("Validation cases", paragraph(f"{run.file(CASES_FILE)} is missing; retrain to get it."))


def report_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """`radlab report`: the report of a run of any task (the task read from its config.yaml). The task's
    sections get the run, its metrics.json (empty when missing) and its validation cases (None)."""
    from radlab.core.task import task_of_run

    task = task_of_run(run_dir)
    run = RunDir(Path(run_dir))
    metrics: dict[str, Any] = {}
    if run.metrics.is_file():
        try:
            metrics = run.read_json(run.metrics.name, MetricsFile)
        except RadlabDataError as error:
            warn(f"{error}; the report leaves the run's scores out")
    cases = read_case_table(run.file(CASES_FILE)) if run.file(CASES_FILE).is_file() else None
    sections = task.report.get()(run, metrics, cases) if task.report is not None else []
    if cases is not None:
        sections.append(calibration_section(cases, read_calibration(run.root)))
    return write_report(run_dir, f"radlab {task.name}: {run.root.resolve().name}", sections, out)


def write_report(run_dir: str | Path, title: str, task_sections: list[Section], out: str | Path | None = None) -> Path:
    """The run's report (common sections, then the task's), written atomically; returns its path."""
    target = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    document = render_document(title, [*run_sections(run_dir), *task_sections])
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, document)
    return target
