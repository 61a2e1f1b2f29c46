import pytest
import typer.main
from typer.testing import CliRunner

from radlab.cli import DEMO_MARKER, app, prepare_demo_folder
from radlab.core.errors import RadlabError
from tests.conftest import run_cli, run_radlab


def _command_paths() -> list[list[str]]:
    """Every command and group of the app, e.g. [], ["mura"], ["mura", "train"], ["synth", "mrnet"]."""
    paths: list[list[str]] = [[]]

    def walk(command, prefix):
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_every_task_contributes_its_commands():
    paths = {" ".join(p) for p in _command_paths()}
    for task in ("mura", "mrnet", "pneumonia", "ich", "toy"):
        assert {f"{task} train", f"{task} predict", f"{task} evaluate", f"synth {task}"} <= paths
    assert {"codalab mura", "codalab mrnet", "codalab toy"} <= paths and "codalab ich" not in paths


@pytest.mark.parametrize("command", _command_paths(), ids=lambda p: " ".join(p) or "radlab")
def test_every_command_has_help(command):
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


@pytest.mark.parametrize(
    "args",
    [["mura", "predict"], ["mura", "evaluate", "only-one.csv"], ["mura", "train", "--out", "x"], ["nope"]],
)
def test_usage_errors_exit_2(args):
    assert run_cli(*args).returncode == 2


def test_synth_command(tmp_path):
    result = run_cli("synth", "mura", tmp_path, "--studies", "14", "--seed", "3")
    assert result.returncode == 0 and (tmp_path / "MURA-v1.1" / "valid_labeled_studies.csv").is_file()


def test_demo_folder_is_reused_only_if_a_demo_made_it(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(RadlabError, match="not made by `radlab demo`"):
        prepare_demo_folder(tmp_path / "mine", "mura")
    target = prepare_demo_folder(tmp_path / "demo", "mura")
    target.mkdir()
    (target / "old").write_text("x")
    assert prepare_demo_folder(tmp_path / "demo", "mura") == target and not target.exists()
    assert (tmp_path / "demo" / DEMO_MARKER).exists()


@pytest.mark.parametrize("content", [None, "task: nosuchtask\n"])
def test_report_of_a_folder_that_is_no_run_is_one_line(tmp_path, content):
    if content is not None:
        (tmp_path / "config.yaml").write_text(content)
    result = run_cli("report", tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "config.yaml" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("kind", "task"), [("prep", "mrnet")])
def test_a_benchmark_a_task_has_not_is_one_line(kind, task):
    result = run_cli("bench", kind, "--task", task)
    assert result.returncode == 1 and f"no `bench {kind}` for {task}" in result.stderr
    assert "Traceback" not in result.stderr


SYNTH = ["mura", "mrnet", "pneumonia", "ich", "toy"]


@pytest.mark.parametrize("task", SYNTH)
def test_synth_refuses_a_folder_that_holds_files(tmp_path, task):
    """Finding 13: `radlab synth mura x` replaced the real labels in x with synthetic ones (exit 0)."""
    precious = tmp_path / "labels.csv"
    precious.write_text("my real labels")
    result = run_radlab("synth", task, tmp_path)
    assert result.returncode == 1 and "already holds files" in result.stderr and "--force" in result.stderr
    assert precious.read_text() == "my real labels" and sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv"]


def test_synth_force_writes_into_a_folder_that_holds_files(tmp_path):
    (tmp_path / "notes.txt").write_text("kept")
    result = run_radlab("synth", "mura", tmp_path, "--studies", "14", "--force")
    assert result.returncode == 0 and (tmp_path / "MURA-v1.1" / "valid_labeled_studies.csv").is_file()
    assert (tmp_path / "notes.txt").read_text() == "kept"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "2", "1.0001"])
@pytest.mark.parametrize("task", ["mura", "pneumonia"])
def test_a_threshold_outside_0_to_1_is_a_usage_error(tmp_path, task, value):
    """Finding 18: `--threshold nan` labelled every study 0 (MURA) or kept no box (pneumonia), exit 0."""
    result = run_radlab(task, "predict", tmp_path / "in", tmp_path / "o.csv", "--model", tmp_path, "--threshold", value)
    assert result.returncode == 2 and "is not between 0 and 1" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["export", ".", "--int8", "--calibration", "0"],  # finding 19: `No data is collected` traceback
        ["export", ".", "--int8", "--calibration", "-5"],  # finding 19: "calibrated on -5 training images"
        ["bench", "infer", "--task", "mura", "--repeats", "0"],  # finding 19: StatisticsError traceback
        ["bench", "infer", "--task", "mura", "--images", "0"],
        ["bench", "prep", "--task", "mura", "--images", "0"],
    ],
)
def test_counts_below_one_are_usage_errors(args):
    result = run_radlab(*args)
    assert result.returncode == 2 and "Invalid value" in result.stderr


def _toy_input(data):
    from radlab.core.task import get_task

    return get_task("toy").demo.get().explain_input(data)


def _file(tmp_path):
    (tmp_path / "a-file").write_text("x")
    return tmp_path / "a-file"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            lambda p, data, run: ["toy", "train", "--data-root", data, "--out", _file(p)],
            "a-file: is a file, not a folder",
        ),
        (lambda p, data, run: ["synth", "mrnet", _file(p)], "a-file: not a folder"),
        (lambda p, data, run: ["toy", "predict", data, p, "--model", run], "is a folder; give a file name"),
        (lambda p, data, run: ["toy", "predict", data, _file(p) / "o.csv", "--model", run], "a-file is a file, not a"),
        (lambda p, data, run: ["report", run, "--out", p], "is a folder; give a file name"),
        (lambda p, data, run: ["explain", "toy", _toy_input(data), "--model", run, "--out", _file(p)], "a-file"),
    ],
)
def test_a_destination_that_cannot_take_the_output_is_one_line(tmp_path, tiny, args, message):
    """Finding 11: an output that is a folder, or inside a file, gave a Python traceback (after the work)."""
    result = run_radlab(*args(tmp_path, tiny.data("toy"), tiny.run("toy")))
    assert result.returncode in (1, 2) and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("device", ["/dev/full", "/dev/null"])
def test_a_device_as_output_is_written_through_and_stays_a_device(tiny, device):
    """Finding 1: as root, `predict ... /dev/full` replaced the device node with a CSV and exited 0."""
    import os
    import stat

    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    data, run = tiny.data("toy"), tiny.run("toy")
    result = run_radlab("toy", "predict", _toy_input(data).parent, device, "--model", run)
    assert stat.S_ISCHR(os.stat(device).st_mode)
    if device == "/dev/full":
        assert result.returncode == 1 and result.stderr.strip() == "error: /dev/full: No space left on device"
    else:
        assert result.returncode == 0, result.stderr
