"""The recipe checklists (docs/recipes/<task>.md) against the `paper` presets: every `key: value` a row
names is the preset's value, every verdict is one of three, and each checklist covers the items the
fidelity audit asked for, so the tables cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from radlab.core.config import flat_keys
from radlab.core.task import get_task

DOCS = Path(__file__).resolve().parents[2] / "docs" / "recipes"
PAIR = re.compile(r"`([a-z_]+(?:\.[a-z_0-9]+)+): ([^`]+)`")
VERDICTS = ("same", "differs", "radlab")
REQUIRED = {
    "mura": {
        "train.monitor",
        "train.members",
        "train.keep_members",
        "train.keep_members_on",
        "optim.plateau_patience",
        "train.loss_weighting",
    },
    "mrnet": {
        "model.dropout",
        "train.class_weighting",
        "optim.plateau_patience",
        "train.early_stopping_patience",
        "train.batch_size",
    },
    "ich": {
        "model.backbone",
        "data.crop",
        "train.fold_rule",
        "train.validation_clip",
        "data.slice_order",
        "sequence.packing",
        "data.pixel_representation_fix",
        "train.snapshot_epochs",
    },
    "pneumonia": {
        "model.backbone",
        "model.freeze_bn",
        "model.box_loss",
        "model.low_quality_matches",
        "model.anchor_offset",
        "postprocess.thresholds",
        "augment.salt_pepper",
        "augment.draws",
        "train.snapshots",
    },
}


def rows(task: str) -> list[list[str]]:
    """The checklist table's rows (item, original, radlab, verdict), header and rule left out."""
    lines = (DOCS / f"{task}.md").read_text(encoding="utf-8").splitlines()
    table = [line for line in lines if line.startswith("| ") and not line.startswith("| item |")]
    return [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in table]


def test_every_task_with_a_paper_preset_has_a_checklist():
    assert {path.stem for path in DOCS.glob("*.md")} >= set(REQUIRED)


@pytest.mark.parametrize("task", sorted(REQUIRED))
def test_each_row_names_what_the_paper_preset_holds(task):
    preset = flat_keys(get_task(task).load_config("paper").model_dump(mode="json"))
    checked = set()
    for item, original, radlab, verdict in rows(task):
        assert item and original, f"{task}: a row without its item or original"
        assert verdict.split(" ")[0].rstrip(":;,") in VERDICTS, f"{task} / {item}: verdict {verdict!r}"
        for key, text in PAIR.findall(radlab):
            assert key in preset, f"{task} / {item}: {key} is no config key"
            expected = yaml.safe_load(text)
            actual = preset[key]
            if isinstance(expected, float) or isinstance(actual, float):
                assert actual == pytest.approx(expected), f"{task} / {item}: {key} is {actual}, not {expected}"
            else:
                assert actual == expected, f"{task} / {item}: {key} is {actual!r}, not {expected!r}"
            checked.add(key)
    assert REQUIRED[task] <= checked, f"{task}: the checklist leaves out {sorted(REQUIRED[task] - checked)}"
