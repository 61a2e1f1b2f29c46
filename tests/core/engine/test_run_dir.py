import pytest

from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError, RadlabError


def test_new_run_creates_the_folder(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.start(resume=False) is None
    assert run.root.is_dir()


def test_existing_run_is_not_overwritten(tmp_path):
    run = RunDir(tmp_path)
    run.config.write_text("task: mura\n")
    with pytest.raises(RadlabError, match="--resume"):
        run.start(resume=False)


def test_resume_needs_a_run(tmp_path):
    with pytest.raises(RadlabError, match="nothing to resume"):
        RunDir(tmp_path).start(resume=True)


def test_resume_finds_the_last_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    run.config.write_text("task: mura\n")
    assert run.start(resume=True) is None
    run.checkpoints.mkdir()
    run.last_checkpoint.write_bytes(b"x")
    assert run.start(resume=True) == run.last_checkpoint


def test_require_model_names_the_missing_file(tmp_path):
    with pytest.raises(RadlabDataError, match=r"config\.yaml"):
        RunDir(tmp_path).require_model()
