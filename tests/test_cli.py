import pytest
import typer.main
from typer.testing import CliRunner

from radlab.cli import DEMO_MARKER, app, prepare_demo_folder
from radlab.core.errors import RadlabError
from tests.conftest import run_cli


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
