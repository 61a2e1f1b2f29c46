"""`radlab card RUN` (issue 18, item 5), on the shared tiny MURA run."""

import json
import shutil

from radlab.core.summary.recipe import DOCS, differences
from tests.conftest import run_radlab


def test_the_card_holds_use_data_recipe_metrics_environment_and_checksums(tiny, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny.run("mura"), run)
    result = run_radlab("card", run)
    assert result.returncode == 0 and result.stderr.strip() == f"model card written: {run / 'MODEL_CARD.md'}"
    card = (run / "MODEL_CARD.md").read_text()
    headings = [line for line in card.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Intended use", "## Data", "## Recipe", "## Metrics", "## Calibration", "## Environment", "## Weights"
    ]  # fmt: skip
    record = json.loads((run / "environment.json").read_text())
    for name, entry in record["data"]["label_files"].items():
        assert f"| {name} | {entry['bytes']} | {entry['sha256']} |" in card
    overall = json.loads((run / "metrics.json").read_text())["study_level"]["Overall"]
    interval = f"{overall['kappa']:.4g} [{overall['kappa_lower']:.4g}, {overall['kappa_upper']:.4g}]"
    assert f"| study_level.Overall.kappa | {interval} |" in card
    assert f"| model.safetensors | {record['weights']['model.safetensors']} |" in card
    assert f"| PyTorch | {record['torch']['version']} " in card and "Must not be used for" in card
    precision = next(row for row in differences(DOCS / "mura.md") if row[0] == "Precision")
    assert "| " + " | ".join(precision) + " |" in card
    assert "Not calibrated" in card


def test_a_card_can_be_written_elsewhere_and_a_folder_that_is_no_run_is_one_line(tiny, tmp_path):
    out = tmp_path / "card.md"
    assert run_radlab("card", tiny.run("toy"), "--out", out).returncode == 0
    assert out.read_text().startswith("# Model card: toy, tiny\n")
    refused = run_radlab("card", tmp_path)
    assert refused.returncode == 1 and refused.stderr.startswith(f"error: {tmp_path}: not a radlab run directory")
