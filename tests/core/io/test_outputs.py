"""What a command may write: never one of its inputs, a file of its model or another of its outputs (exit 2),
and a destination that cannot take the file is found before the work (exit 1)."""

from __future__ import annotations

import os

import pytest

from radlab.core.errors import RadlabConfigError, RadlabDataError
from radlab.core.io.outputs import check_outputs


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "run").mkdir()
    for name in ("in.csv", "run/model.safetensors", "run/config.yaml"):
        (tmp_path / name).write_text("x")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.dcm").write_text("x")
    (tmp_path / "link.csv").symlink_to(tmp_path / "in.csv")
    os.link(tmp_path / "in.csv", tmp_path / "hard.csv")
    return tmp_path


@pytest.mark.parametrize(
    ("outputs", "inputs", "message"),
    [
        (["in.csv"], ["in.csv"], "would overwrite the input"),  # finding 2: the input CSV was replaced
        (["./sub/../in.csv"], ["in.csv"], "would overwrite the input"),
        (["link.csv"], ["in.csv"], "would overwrite the input"),
        (["hard.csv"], ["in.csv"], "would overwrite the input"),
        (["images/a.dcm"], ["images"], "would overwrite the input"),
        (["run/model.safetensors"], ["in.csv"], "is inside the model"),  # finding 2: the weights were lost
        (["run/config.yaml"], ["in.csv"], "is inside the model"),
        (["run/new.csv"], ["in.csv"], "is inside the model"),  # refused before it exists, so on a rerun too
        (["out.csv", "out.csv"], ["in.csv"], "are the same file"),  # finding 2: --probs over the submission
        (["out.csv", "./out.csv"], ["in.csv"], "are the same file"),
    ],
)
def test_an_output_that_would_destroy_an_input_or_the_model_is_a_usage_error(files, outputs, inputs, message):
    os.chdir(files)
    (files / "sub").mkdir(exist_ok=True)
    with pytest.raises(RadlabConfigError, match=message):
        check_outputs(outputs, inputs=inputs, models=["run"])


@pytest.mark.parametrize("outputs", [["out.csv"], ["out.csv", "probs.csv"], ["images/new.csv"], ["runs.csv"]])
def test_new_files_beside_the_inputs_are_fine(files, outputs):
    os.chdir(files)
    check_outputs(outputs, inputs=["in.csv", "images"], models=["run"])


def _read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    return folder / "out.csv"


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: p, RadlabDataError, "is a folder"),  # finding 11: a traceback after the whole inference
        (lambda p: p / "in.csv" / "out.csv", RadlabDataError, "is a file, not a folder"),
        (_read_only_folder, RadlabDataError, "is not writable"),
    ],
)
def test_an_unwritable_destination_is_one_line_before_any_work(files, make, error, message):
    if os.geteuid() == 0 and make is _read_only_folder:
        pytest.skip("root writes into read-only folders")
    with pytest.raises(error, match=message):
        check_outputs([make(files)], inputs=[files / "in.csv"])
