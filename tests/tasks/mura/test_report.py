"""MURA's report: the validation case table behind it, and the sections a user looks for."""

from __future__ import annotations

import json
import re

from radlab.core.engine.run_dir import RunDir
from radlab.core.report import read_case_table
from radlab.tasks.mura.formats import STUDY_TYPES
from radlab.tasks.mura.views import sections
from tests.conftest import run_cli


def test_training_writes_one_case_per_validation_study(tiny_mura, tiny_run):
    table = read_case_table(tiny_run / "valid_predictions.csv")
    studies = {p.relative_to(tiny_mura).as_posix() + "/" for p in tiny_mura.glob("MURA-v1.1/valid/XR_*/*/*/")}
    assert set(table.cases) == studies and table.labels == ["abnormal"]
    assert set(table.groups) <= set(STUDY_TYPES)
    assert all(case.rsplit("_", 1)[-1].startswith(("positive", "negative")) for case in table.cases)
    assert all(int("positive" in case) == t for case, t in zip(table.cases, table.truth[:, 0], strict=True))


def test_sections_hold_the_kappa_table_curves_and_gallery(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    cases = read_case_table(tiny_run / "valid_predictions.csv")
    found = {section.title: section.body for section in sections(RunDir(tiny_run), metrics, cases)}
    assert list(found) == [
        "Kappa per study type (validation)",
        "ROC and precision-recall (validation)",
        "Confusion matrix",
        "Gallery: abnormal, with what the model looked at",
    ]
    assert "0.705" in found["Kappa per study type (validation)"]  # the paper's overall kappa, beside ours
    assert len(re.findall("<img", found["Gallery: abnormal, with what the model looked at"])) >= 2


def test_cli_report_writes_one_file_and_names_it(tiny_run, tmp_path):
    result = run_cli("report", tiny_run, "--out", tmp_path / "r.html")
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "r.html") in result.stdout + result.stderr
    page = (tmp_path / "r.html").read_text()
    assert page.count("data:image/png;base64,") >= 5 and "http://" not in page and "https://" not in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
