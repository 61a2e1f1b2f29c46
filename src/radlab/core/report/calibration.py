"""The report's calibration section: a reliability diagram per label, its expected calibration error, and,
when `radlab calibrate` has run, ECE and the official metric before and after temperature scaling."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from radlab.core.calibration import BINS, UNCHANGED_NOTE, apply_temperature
from radlab.core.metrics.calibration import expected_calibration_error, reliability_bins
from radlab.core.report.cases import CaseTable
from radlab.core.report.document import Section, figure_html, paragraph, table_html


def reliability_diagram(table: CaseTable, temperatures: dict[str, float], bins: int = BINS) -> Figure:
    """Observed frequency against mean probability per bin, one panel per label (calibrated points too)."""
    columns = min(len(table.labels), 3)
    rows = -(-len(table.labels) // columns)
    figure = Figure(figsize=(3.6 * columns, 3.4 * rows))
    for k, label in enumerate(table.labels):
        axis = figure.add_subplot(rows, columns, k + 1)
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        shown = [("network", table.probs[:, k])]
        if label in temperatures:
            shown.append((f"T = {temperatures[label]:.3g}", apply_temperature(table.probs[:, k], temperatures[label])))
        for name, probs in shown:
            found = reliability_bins(table.truth[:, k], probs, bins)
            filled = found.counts > 0
            axis.plot(found.confidence[filled], found.frequency[filled], marker="o", markersize=3, label=name)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_title(label)
        axis.set_xlabel("mean predicted probability")
        axis.set_ylabel("observed frequency")
        axis.legend(fontsize="small")
    figure.tight_layout()
    return figure


def calibration_section(table: CaseTable, record: dict[str, Any] | None) -> Section:
    """Reliability diagrams and ECE per label; before and after from RUN/calibration.json when present."""
    bins = int(record["bins"]) if record else BINS
    fitted = record["labels"] if record else {}
    temperatures = {label: float(e["temperature"]) for label, e in fitted.items()}
    if record is None:
        rows = [[label, expected_calibration_error(table.truth[:, k], table.probs[:, k], bins)]
                for k, label in enumerate(table.labels)]  # fmt: skip
        body = table_html(["label", "ECE"], rows, caption=f"{len(table.cases)} validation cases, {bins} bins")
        body += paragraph("Not calibrated: `radlab calibrate RUN` fits a temperature per label on these cases.")
    else:
        rows = [[label, e["temperature"], e["ece_before"], e["ece_after"], e["nll_before"], e["nll_after"]]
                for label, e in fitted.items()]  # fmt: skip
        columns = ["label", "temperature", "ECE before", "ECE after", "NLL before", "NLL after"]
        body = table_html(columns, rows, caption=f"{record['cases']} validation cases, {bins} bins")
        official = record.get("official") or {}
        before, after = official.get("before") or {}, official.get("after") or {}
        if before:
            metric_rows = [[name, value, after.get(name)] for name, value in before.items()]
            body += table_html(["official metric", "before", "after"], metric_rows)
            body += paragraph(f"{official.get('note', UNCHANGED_NOTE)}; predict writes the calibrated probabilities.")
    curves = figure_html(reliability_diagram(table, temperatures, bins))
    return Section("Calibration (validation)", curves + body)
