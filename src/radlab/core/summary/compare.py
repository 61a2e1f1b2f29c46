"""`radlab compare RUN_A RUN_B ...`: the config keys in which the runs differ and their metrics side by side
(with intervals where the run records them), as text; `--html` also puts every run's training curves on
one self-contained page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radlab.core.io.atomic import atomic_write_text
from radlab.core.summary.facts import RunFacts, format_value, read_facts, with_intervals

MISSING = "-"


def differing_config(runs: Sequence[RunFacts]) -> list[list[str]]:
    """Rows (key, value in each run) of the config keys whose values are not all equal."""
    keys: list[str] = []
    for run in runs:
        keys += [key for key in run.config if key not in keys]
    rows = []
    for key in keys:
        values = [run.config.get(key, MISSING) for run in runs]
        if any(value != values[0] for value in values[1:]):
            rows.append([key, *(_text(value) for value in values)])
    return rows


def metrics_side_by_side(runs: Sequence[RunFacts]) -> list[list[str]]:
    """Rows (metric, value [interval] in each run) of every metric any run records."""
    folded = [with_intervals(run.metrics) for run in runs]
    keys: list[str] = []
    for metrics in folded:
        keys += [key for key in metrics if key not in keys]
    return [[key, *(format_value(*m[key]) if key in m else MISSING for m in folded)] for key in keys]


def _text(value: Any) -> str:
    return MISSING if value is None else str(value)


def render_text(runs: Sequence[RunFacts]) -> str:
    names = [_name(run) for run in runs]
    config = differing_config(runs)
    parts = [_aligned(["config key", *names], config) if config else "config: the same in every run"]
    parts.append(_aligned(["metric", *names], metrics_side_by_side(runs)))
    return "\n\n".join(parts) + "\n"


def _name(run: RunFacts) -> str:
    return str(run.path) if run.kind == "run" else f"{run.path} ({run.kind})"


def _aligned(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[k])) for row in [columns, *rows]) for k in range(len(columns))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [columns, *rows]]  # fmt: skip
    return "\n".join(lines)


def compare(paths: Sequence[str | Path], html: str | Path | None = None) -> str:
    """The comparison as text; with `html`, also the page (tables and each run's training curves)."""
    runs = [read_facts(path) for path in paths]
    if html is not None:
        atomic_write_text(html, render_html(runs))
    return render_text(runs)


def render_html(runs: Sequence[RunFacts]) -> str:
    from radlab.core.report.document import Section, figure_html, paragraph, render_document, table_html
    from radlab.core.report.plots import training_curves

    names = [_name(run) for run in runs]
    config = differing_config(runs)
    curves = []
    for run, name in zip(runs, names, strict=True):
        figure = training_curves(run.history)
        curves.append(figure_html(figure, name) if figure is not None else paragraph(f"{name}: no history.csv"))
    sections = [
        Section("Config keys that differ", table_html(["key", *names], config) if config else paragraph("none")),
        Section("Metrics", table_html(["metric", *names], metrics_side_by_side(runs))),
        Section("Training curves", "".join(curves)),
    ]
    return render_document("radlab compare: " + ", ".join(run.path.name for run in runs), sections)
