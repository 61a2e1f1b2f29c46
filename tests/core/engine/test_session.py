"""Opening a run: rank 0 owns the run directory; the other processes of a distributed run only read it."""

from __future__ import annotations

import pytest

from radlab.core.engine.session import is_primary_process, open_run
from radlab.core.errors import RadlabError
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
    run, config, checkpoint = open_run(tmp_path / "run", get_task("mura"), "cpu-small", [], False)
    assert run.config.is_file() and checkpoint is None
    with pytest.raises(RadlabError, match="already holds a training run"):
        open_run(tmp_path / "run", get_task("mura"), "cpu-small", [], False)
    monkeypatch.setenv("LOCAL_RANK", "1")  # the worker Lightning starts beside rank 0
    before = run.config.read_text()
    _, same, _ = open_run(tmp_path / "run", get_task("mura"), "cpu-small", [], False)
    assert same == config and run.config.read_text() == before
    _, other, _ = open_run(tmp_path / "elsewhere", get_task("mura"), "cpu-small", [], False)
    assert not (tmp_path / "elsewhere").exists() and other == config
