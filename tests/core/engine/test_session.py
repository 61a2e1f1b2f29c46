"""Opening a run: rank 0 owns the run directory; the other processes of a distributed run only read it."""

from __future__ import annotations

import pytest

from radlab.core.engine.session import is_primary_process, open_run
from radlab.core.errors import RadlabConfigError, RadlabError
from radlab.core.task import get_task


@pytest.mark.parametrize(
    ("env", "primary"),
    [({}, True), ({"LOCAL_RANK": "0"}, True), ({"LOCAL_RANK": "1"}, False), ({"NODE_RANK": "1"}, False),
     ({"RANK": "3", "LOCAL_RANK": "1"}, False), ({"SLURM_PROCID": "0"}, True)],
)  # fmt: skip
def test_primary_process_from_the_rank_variables(monkeypatch, env, primary):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_primary_process() is primary


def test_a_secondary_rank_neither_creates_nor_refuses_the_run_directory(monkeypatch, tmp_path):
    for name in ("RANK", "NODE_RANK", "SLURM_PROCID", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    with open_run(tmp_path / "run", get_task("mura"), "cpu-small", [], False) as (run, config, checkpoint):
        assert run.config.is_file() and checkpoint is None
    refused = pytest.raises(RadlabError, match="already holds a training run")
    with refused, open_run(tmp_path / "run", get_task("mura"), "cpu-small", [], False):
        pass
    monkeypatch.setenv("LOCAL_RANK", "1")  # the worker Lightning starts beside rank 0
    before = run.config.read_text()
    with open_run(tmp_path / "run", get_task("mura"), "cpu-small", [], False) as (_, same, _):
        assert same == config and run.config.read_text() == before
    with open_run(tmp_path / "elsewhere", get_task("mura"), "cpu-small", [], False) as (_, other, _):
        assert not (tmp_path / "elsewhere").exists() and other == config


def _trained(tmp_path, task="mura"):
    """A run directory as a training leaves it (its config.yaml), without training."""
    first = {"mura": "optim.lr=0.1", "ich": "train.lr=0.0001"}[task]
    with open_run(tmp_path / "run", get_task(task), "cpu-small", [first], False) as (run, _, _):
        return run


@pytest.mark.parametrize(
    ("task", "stage", "override", "refused"),
    [
        ("mura", None, "optim.lr=0.0001", "optim.lr"),  # finding 5: written to config.yaml, lr 0.1 kept
        ("mura", None, "train.monitor=loss", "train.monitor"),  # finding 5: the kept epoch was still by kappa
        ("mura", None, "model.backbone=resnet18", "model.backbone"),
        ("mura", None, "data.image_size=64", "data.image_size"),
        ("mura", None, "train.max_epochs=9", None),  # how long, where and how it runs may change
        ("mura", None, "train.progress=lines", None),
        ("mura", None, "data.num_workers=0", None),
        ("mura", None, "predict.batch_size=3", None),
        ("mura", None, "train.early_stopping_patience=9", "train.early_stopping_patience"),  # Lightning restores it
        ("mura", None, "model.weights_file=/moved/densenet.safetensors", None),  # the checkpoint replaces them
        ("mura", None, "model.pretrained=false", None),
        ("ich", "sequence", "train.fold=1", "train.fold"),  # finding 7: its slice CNN is fold 0's
        ("ich", "sequence", "sequence.max_epochs=3", None),
        ("ich", "embed", "embeddings.tta=[none]", None),
        ("ich", "embed", "data.image_size=64", "data.image_size"),
        ("ich", "embed", "sequence.lr=0.005", "sequence.lr"),  # --stage embed trains no sequence model
    ],
)
def test_resume_and_later_stages_refuse_what_they_could_not_apply(tmp_path, task, stage, override, refused):
    run = _trained(tmp_path, task)
    before = run.config.read_text()
    resume = stage is None
    opening = open_run(run.root, get_task(task), None, [override], resume, stage)
    if refused is None:
        with opening as (_, config, _):
            assert config is not None
        return
    with pytest.raises(RadlabConfigError, match=rf"--set {refused}: .*start a new run"), opening:
        pass
    assert run.config.read_text() == before  # nothing recorded that was not applied


def test_a_second_training_of_a_run_in_progress_is_refused(tmp_path):
    """Finding 24: two concurrent --resume runs both ran, mixing their history rows."""
    run = _trained(tmp_path)
    busy = pytest.raises(RadlabError, match="being trained by another process")
    with (
        open_run(run.root, get_task("mura"), None, [], True),
        busy,
        open_run(run.root, get_task("mura"), None, [], True),
    ):
        pass
    with open_run(run.root, get_task("mura"), None, [], True):  # free again once the first is done
        pass


def test_two_new_trainings_of_one_folder_cannot_both_start(tmp_path):
    """Finding 29: RunDir.start checked, then wrote config.yaml; the lock closes that window."""
    task = get_task("mura")
    busy = pytest.raises(RadlabError, match=r"being trained by another process|already holds a training run")
    with (
        open_run(tmp_path / "run", task, "cpu-small", [], False),
        busy,
        open_run(tmp_path / "run", task, "cpu-small", [], False),
    ):
        pass
