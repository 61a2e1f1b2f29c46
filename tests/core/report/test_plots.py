"""Report figures: one line per series and metric, crowded panels thinned, one-class labels skipped."""

from __future__ import annotations

import numpy as np
import pytest

from radlab.core.report.plots import roc_pr_curves, split_series, sweep_curves, training_curves


def _rows(series: list[str], metrics: list[str]) -> list[dict[str, str]]:
    return [
        {"unit": s, "epoch": str(e), "train/loss": "1", "val/loss": "0.9", **{m: "0.5" for m in metrics}, "lr": "1e-3"}
        for s in series
        for e in (1, 2)
    ]


@pytest.mark.parametrize(
    ("series", "metrics", "metric_lines"),
    [
        (["a"], ["val/auroc", "val/auroc_acl"], 2),
        (["a", "b", "c"], ["val/auroc", "val/auroc_acl", "val/auroc_men"], 3),  # 9 > 8 lines: variants dropped
    ],
)
def test_training_curves_draw_each_series_and_metric(series, metrics, metric_lines):
    figure = training_curves(_rows(series, metrics))
    loss, metric, lr = figure.axes
    assert len(loss.lines) == 2 * len(series)
    assert len(metric.lines) == metric_lines
    assert len(lr.lines) == len(series) and lr.get_yscale() == "log"
    assert list(split_series(_rows(series, metrics))) == series


def test_no_history_gives_no_figure():
    assert training_curves([]) is None and sweep_curves([]) is None


def test_roc_pr_skip_a_label_with_one_class():
    truth = np.array([[0, 1], [1, 1], [0, 1], [1, 1]])
    probs = np.array([[0.1, 0.5], [0.8, 0.6], [0.3, 0.7], [0.9, 0.2]])
    roc, pr = roc_pr_curves(truth, probs, ["both", "one"]).axes
    assert roc.lines[0].get_label() == "both (AUROC 1.000)" and len(roc.lines) == 2  # and the diagonal
    assert len(pr.lines) == 1


def test_sweep_curves_one_line_per_epoch():
    rows = [{"epoch": "1", "0.1": "0.2", "0.5": "0.3"}, {"epoch": "2", "0.1": "0.25", "0.5": "0.4"}]
    (axis,) = sweep_curves(rows).axes
    assert len(axis.lines) == 2
    np.testing.assert_allclose(axis.lines[1].get_xydata(), [[0.1, 0.25], [0.5, 0.4]])
