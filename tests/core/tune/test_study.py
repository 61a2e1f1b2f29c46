import csv
import os
import subprocess
import sys

import optuna
import pytest

from radlab.core.errors import RadlabConfigError, RadlabError
from radlab.core.task import Task, get_task
from radlab.core.tune.study import run_tuning, storage_url
from radlab.tasks.mura import MuraConfig
from tests.conftest import TINY_TRAIN

TRIAL_SETS = [*TINY_TRAIN, "train.max_epochs=2"]


def tuning() -> Task:
    return get_task("mura")


def load_mura_config(path):
    return get_task("mura").load_config(path)


def _trial_sets():
    return [arg for item in TRIAL_SETS for arg in ("--set", item)]


def test_two_workers_one_after_the_other_share_a_sqlite_study(tiny_mura, tmp_path):
    out = tmp_path / "tune"
    first = run_tuning(tuning(), tiny_mura, out, 2, config_name="cpu-small", overrides=TRIAL_SETS, seed=1)
    second = run_tuning(tuning(), tiny_mura, out, 1, config_name="cpu-small", overrides=TRIAL_SETS, seed=2)
    assert (first["trials"], second["trials"]) == (2, 3)
    study = optuna.load_study(study_name="radlab-mura", storage=storage_url(None, out))
    assert sorted(t.number for t in study.trials) == [0, 1, 2]
    assert {t.state for t in study.trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    for trial in study.trials:  # each trial is an ordinary run trained with its draws
        config = load_mura_config(out / f"trial-{trial.number:04d}" / "config.yaml")
        assert config.optim.lr == pytest.approx(trial.params["optim.lr"])
        assert config.model.backbone == trial.params["model.backbone"]
    with open(out / "trials.csv", newline="") as handle:
        assert [row["number"] for row in csv.DictReader(handle)] == ["0", "1", "2"]
    best = load_mura_config(out / "best.yaml")  # a preset file `train --config` takes
    assert best.optim.lr == pytest.approx(study.best_trial.params["optim.lr"])
    assert best.train.max_epochs == 2 and best.data.image_size == 32
    assert best.train.devices == "auto"  # trials ran on one device each; the preset keeps the user's choice
    assert load_mura_config(out / "trial-0000" / "config.yaml").train.devices == 1
    assert second["best_trial"] == study.best_trial.number


def test_a_worker_with_another_base_config_cannot_join(tiny_mura, tmp_path):
    out = tmp_path / "tune"
    run_tuning(tuning(), tiny_mura, out, 1, config_name="cpu-small", overrides=TRIAL_SETS)
    with pytest.raises(RadlabConfigError, match="was started with"):
        run_tuning(tuning(), tiny_mura, out, 1, config_name="cpu-small", overrides=[*TRIAL_SETS, "optim.lr=0.1"])


def test_a_config_without_a_search_space_is_refused(tiny_mura, tmp_path, monkeypatch):
    bare = MuraConfig.model_validate({"train": {"devices": 1}})
    monkeypatch.setattr(Task, "load_config", lambda self, name=None, sets=(): bare)
    with pytest.raises(RadlabConfigError, match=r"declares no tune\.space"):
        run_tuning(tuning(), tiny_mura, tmp_path / "tune", 1)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("{optim.lrr: {type: float, low: 0.1, high: 0.2}}", "lrr"),
        ("{augment.hflip: {type: float, low: 0.0, high: 2.0}}", "hflip"),
        ("{model.backbone: {type: categorical, choices: [test_resnet, 7]}}", "backbone"),
    ],
)
def test_a_bad_search_space_fails_before_any_training(tiny_mura, tmp_path, space, message):
    with pytest.raises(RadlabConfigError, match=message):
        run_tuning(
            tuning(),
            tiny_mura,
            tmp_path / "tune",
            1,
            config_name="cpu-small",
            overrides=[*TRIAL_SETS, f"tune.space={space}"],
        )
    assert not (tmp_path / "tune").exists()


@pytest.mark.parametrize(
    "launch", [["train.devices=2"], ["train.strategy=ddp"], ["train.num_nodes=2"], ["train.devices=0,1"]]
)
def test_a_trial_is_one_process_on_one_device(tiny_mura, tmp_path, launch):
    with pytest.raises(RadlabConfigError, match="one process on one device"):
        run_tuning(tuning(), tiny_mura, tmp_path / "tune", 1, config_name="cpu-small", overrides=[*TRIAL_SETS, *launch])


def test_an_unreachable_database_is_one_line_without_the_password(tiny_mura, tmp_path):
    url = "postgresql://someone:secret@127.0.0.1:1/nowhere"
    with pytest.raises(RadlabError, match="cannot open the study storage") as caught:
        run_tuning(tuning(), tiny_mura, tmp_path / "tune", 1, storage=url, config_name="cpu-small")
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("given", "expected_start"),
    [
        (None, "sqlite:///"),
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
    ],
)
def test_storage_urls(tmp_path, given, expected_start):
    assert storage_url(given, tmp_path).startswith(expected_start)


def start_worker(data, out, storage, study, seed):
    """`radlab tune mura` as its own process, as on another machine."""
    args = ["tune", "mura", "--data-root", data, "--trials", "2", "--out", out, "--config", "cpu-small"]
    args += ["--study-name", study, "--seed", str(seed), *_trial_sets()]
    if storage:
        args += ["--storage", storage]
    return subprocess.Popen(
        [sys.executable, "-m", "radlab", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def postgres_url():
    url = os.environ.get("RADLAB_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("RADLAB_POSTGRES_TESTS") == "required":
            pytest.fail("RADLAB_POSTGRES_TESTS=required but RADLAB_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL: set RADLAB_TEST_POSTGRES_URL (.ci/run starts one on loopback)")
    return url


def test_two_workers_at_once_share_a_postgres_study_and_lose_no_trial(tiny_mura, tmp_path):
    url = postgres_url()
    study_name = f"radlab-test-{os.getpid()}-{tmp_path.name}"
    out = tmp_path / "shared"
    workers = [start_worker(tiny_mura, out, url, study_name, seed) for seed in (1, 2)]
    results = [(w.wait(timeout=600), w.stderr.read()) for w in workers]
    for code, stderr in results:
        assert code == 0, stderr
    study = optuna.load_study(study_name=study_name, storage=storage_url(url, out))
    trials = study.trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    finished = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert all(t.state in finished for t in trials), [t.state for t in trials]
    by_worker = {}
    for trial in trials:
        by_worker.setdefault(trial.user_attrs["worker"], []).append(trial.number)
        assert (out / f"trial-{trial.number:04d}" / "config.yaml").is_file()
    assert sorted(len(numbers) for numbers in by_worker.values()) == [2, 2]  # both workers, two trials each
    assert "4 trials" in results[0][1] + results[1][1]  # the later worker saw the whole study
    assert load_mura_config(out / "best.yaml").optim.lr == pytest.approx(study.best_trial.params["optim.lr"])


def _open_storage(url, results):
    from radlab.core.tune.study import _storage

    try:
        _storage(url)
        results.put("ok")
    except Exception as exc:  # reported to the parent, which asserts on it
        results.put(repr(exc))


def test_workers_started_together_on_an_empty_database_all_get_in(tmp_path):
    """They race to create Optuna's tables (without the retry, 3 of 24 openings failed here with a duplicate
    pg_type key); each loser tries again."""
    import multiprocessing

    import sqlalchemy

    base = storage_url(postgres_url(), tmp_path)
    database = f"radlab_race_{os.getpid()}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {database}"))
    try:
        results = multiprocessing.Queue()
        url = base.rsplit("/", 1)[0] + f"/{database}"
        workers = [multiprocessing.Process(target=_open_storage, args=(url, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert [results.get(timeout=5) for _ in workers] == ["ok"] * 4
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        admin.dispose()


@pytest.mark.parametrize(("task", "preset"), [("mura", "paper"), ("pneumonia", "paper"), ("ich", "paper")])
def test_a_trial_trains_one_model_where_the_preset_trains_an_ensemble(task, preset):
    from radlab.core.tune.study import _one_model

    chosen = get_task(task)
    ensemble, trial = chosen.load_config(preset).train, chosen.load_config(preset, _one_model(chosen, preset)).train
    assert (ensemble.members, ensemble.snapshots, ensemble.snapshot_epochs) != (None, None, None)
    assert (trial.members, trial.snapshots, trial.snapshot_epochs) == (None, None, None)
