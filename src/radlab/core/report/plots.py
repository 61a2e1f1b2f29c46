"""The report's figures, drawn with matplotlib (Agg, no display): curves per epoch, ROC and PR."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import auc, precision_recall_curve, roc_curve

SERIES_KEYS = ("stage", "unit", "fold")
NOT_PLOTTED = ("epoch", "seconds", *SERIES_KEYS)
MAX_LINES = 8


def _float(value: str | float | None) -> float:
    try:
        return float(value) if value not in (None, "") else math.nan
    except ValueError:
        return math.nan


def split_series(rows: Sequence[Mapping[str, str]]) -> dict[str, list[Mapping[str, str]]]:
    """History rows by training series (stage / unit / fold columns, when a run trains several networks)."""
    series: dict[str, list[Mapping[str, str]]] = {}
    for row in rows:
        name = " ".join(str(row[k]) for k in SERIES_KEYS if row.get(k)) or "run"
        series.setdefault(name, []).append(row)
    return series


def training_curves(rows: Sequence[Mapping[str, str]]) -> Figure | None:
    """Losses, validation metrics and learning rate per epoch, one line per series (None without rows)."""
    if not rows:
        return None
    columns = [c for c in rows[0] if c not in NOT_PLOTTED]
    losses = [c for c in columns if c.endswith("loss") and c != "lr"]
    metrics = [c for c in columns if c.startswith("val/") and c not in losses]
    series = split_series(rows)
    if len(series) * len(metrics) > MAX_LINES:  # keep the summary metrics, drop their per-label variants
        metrics = [c for c in metrics if not any(c != m and c.startswith(m + "_") for m in metrics)]
    panels = [("loss", losses), ("validation metric", metrics), ("learning rate", ["lr"] if "lr" in columns else [])]
    panels = [(title, cols) for title, cols in panels if cols]
    figure = Figure(figsize=(5.0 * len(panels), 3.6))
    for k, (title, cols) in enumerate(panels):
        axis = figure.add_subplot(1, len(panels), k + 1)
        for name, part in series.items():
            epochs = [_float(r.get("epoch")) for r in part]
            for column in cols:
                values = [_float(r.get(column)) for r in part]
                if all(math.isnan(v) for v in values):
                    continue
                label = column if len(series) == 1 else f"{name}: {column}"
                axis.plot(epochs, values, marker="o", markersize=3, label=label)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if title == "learning rate":
            axis.set_yscale("log")
        if axis.lines:
            axis.legend(fontsize=6 if len(series) > 3 else 8)
    figure.tight_layout()
    return figure


def roc_pr_curves(truth: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> Figure:
    """ROC (with AUROC) and precision-recall (with average precision's baseline) per label."""
    figure = Figure(figsize=(10.0, 4.0))
    roc_axis, pr_axis = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for k, label in enumerate(labels):
        y, p = truth[:, k], probs[:, k]
        if y.min() == y.max():
            continue
        fpr, tpr, _ = roc_curve(y, p)
        area = float(auc(fpr, tpr))
        roc_axis.plot(fpr, tpr, label=f"{label} (AUROC {area:.3f})")
        precision, recall, _ = precision_recall_curve(y, p)
        pr_axis.step(recall, precision, where="post", label=f"{label} (prevalence {y.mean():.2f})")
    roc_axis.plot([0, 1], [0, 1], linestyle=":", color="grey")
    roc_axis.set(title="ROC", xlabel="false-positive rate", ylabel="true-positive rate")
    pr_axis.set(title="precision-recall", xlabel="recall", ylabel="precision", ylim=(0, 1.02))
    for axis in (roc_axis, pr_axis):
        if axis.lines:
            axis.legend(fontsize=7, loc="lower right" if axis is roc_axis else "lower left")
    figure.tight_layout()
    return figure


def sweep_curves(rows: Sequence[Mapping[str, str]], value_name: str = "mAP") -> Figure | None:
    """A metric against a swept parameter (columns other than epoch), one line per epoch."""
    if not rows:
        return None
    columns = [c for c in rows[0] if c != "epoch"]
    xs = [_float(c) for c in columns]
    figure = Figure(figsize=(6.0, 4.0))
    axis = figure.add_subplot(1, 1, 1)
    palette = colormaps["viridis"]
    for k, row in enumerate(rows):
        colour = palette(k / max(1, len(rows) - 1))
        axis.plot(xs, [_float(row[c]) for c in columns], color=colour, label=f"epoch {row['epoch']}")
    axis.set(xlabel="score threshold", ylabel=value_name, title=f"{value_name} against score threshold")
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return figure
