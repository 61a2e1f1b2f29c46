"""Experiment tracking (issue 18, item 1): a toy training through `--logger` read back from what each
logger wrote: CSV, TensorBoard event files, an MLflow file store and an MLflow sqlite store."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from radlab.core.engine.callbacks import read_history
from radlab.core.engine.run_dir import RunDir
from tests.conftest import run_radlab

EPOCHS = 2


def _train(tiny, run, *extra):
    result = run_radlab(
        "toy", "train", "--data-root", tiny.data("toy"), "--out", run, "--config", "cpu-small",
        "--set", f"train.max_epochs={EPOCHS}", "--set", "train.early_stopping_patience=null",
        "--set", "train.progress=quiet", *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    history = {key: [float(row[key]) for row in read_history(run / "history.csv")] for key in ("val/auroc", "lr")}
    return history, json.loads((run / "metrics.json").read_text())


def _csv_metrics(run):
    with open(run / "logs" / "csv" / "run" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    series = {key: [(int(r["step"]), float(r[key])) for r in rows if r.get(key)] for key in rows[0]}
    return series, (run / "logs" / "csv" / "run" / "hparams.yaml").read_text()


def _tensorboard_metrics(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "logs" / "tensorboard" / "run"))
    events.Reload()
    series = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    return series, (run / "logs" / "tensorboard" / "run" / "hparams.yaml").read_text()


def _mlflow_metrics(uri):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    (found,) = client.search_runs([client.get_experiment_by_name("radlab").experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == "run"
    series = {key: [(m.step, m.value) for m in client.get_metric_history(found.info.run_id, key)]
              for key in found.data.metrics}  # fmt: skip
    return series, found.data.params


@pytest.mark.parametrize("kind", ["csv", "tensorboard", "mlflow-files", "mlflow-sqlite"])
def test_a_tracked_training_reads_back_with_its_hyperparameters_epochs_and_final_metrics(
    kind, tiny, tmp_path, monkeypatch, one_thread
):
    run = tmp_path / "run"
    if kind.startswith("mlflow"):
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = (tmp_path / "mlruns").as_uri() if kind == "mlflow-files" else f"sqlite:///{tmp_path / 'mlflow.db'}"
        history, metrics = _train(tiny, run, "--logger", "mlflow", "--set", f"tracking.mlflow_uri={uri}")
        series, params = _mlflow_metrics(uri)
        assert params["train.max_epochs"] == str(EPOCHS) and params["tracking.logger"] == "mlflow"
        tracked = json.loads((run / "environment.json").read_text())["tracking"]
        assert (tracked["uri"], tracked["experiment"], len(tracked["run_id"])) == (uri, "radlab", 32)
    else:
        history, metrics = _train(tiny, run, "--logger", kind)
        series, hparams = _csv_metrics(run) if kind == "csv" else _tensorboard_metrics(run)
        assert f"train.max_epochs: {EPOCHS}" in hparams
        tracked = json.loads((run / "environment.json").read_text())["tracking"]
        assert tracked == {"logger": kind, "folder": f"logs/{kind}"}
    for key, values in history.items():
        assert [step for step, _ in series[key]] == list(range(1, EPOCHS + 1))
        assert [value for _, value in series[key]] == pytest.approx(values, rel=1e-6)
    assert series["final/auroc"] == [(0, pytest.approx(metrics["auroc"]))]
    assert series["final/epoch"] == [(0, metrics["epoch"])]


def test_no_logger_is_the_default_and_writes_no_logs(tiny_run):
    assert not (tiny_run / "logs").exists()
    assert "tracking" not in json.loads((tiny_run / "environment.json").read_text())


def test_parts_of_a_run_log_into_their_own_folders_and_one_mlflow_run(tmp_path, monkeypatch):
    """Stages and units (ICH's slice/, MRNet's units/<name>/) are parts of one tracked run."""
    from mlflow.tracking import MlflowClient

    from radlab.core.engine.config import TrackingConfig
    from radlab.core.engine.tracking import Tracker

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    root = tmp_path / "run"
    for kind in ("csv", "mlflow"):
        section = TrackingConfig(logger=kind, mlflow_uri=(tmp_path / "mlruns").as_uri())
        tracker = Tracker(section, root, {"train.seed": 0})
        tracker.epoch(RunDir(root / "units" / "acl-axial"), {"epoch": 1, "val/auc": 0.5, "note": "x"})
        tracker.epoch(RunDir(root), {"epoch": 1, "val/auc": 0.75})
        tracker.close("success")
    assert (root / "logs" / "csv" / "units" / "acl-axial" / "metrics.csv").is_file()
    assert (root / "logs" / "csv" / "run" / "metrics.csv").is_file()
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name("radlab").experiment_id])
    assert found.data.metrics == {"units.acl-axial-val/auc": 0.5, "val/auc": 0.75}


@pytest.mark.parametrize("kind", ["tensorboard", "mlflow"])
def test_a_logger_whose_package_is_missing_is_one_line(kind, tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, kind, None)  # `import kind` now fails as if it were not installed
    result = run_radlab("toy", "train", "--data-root", tiny.data("toy"), "--out", tmp_path / "run", "--logger", kind)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"error: --logger {kind} needs the {kind} package: pip install radlab[tracking]"
    ]
    assert not (tmp_path / "run").exists()


def test_an_mlflow_store_that_refuses_is_one_line(tiny, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = (tmp_path / "mlruns").as_uri()  # MLflow 3 refuses a file store unless allowed
    result = run_radlab(
        "toy", "train", "--data-root", tiny.data("toy"), "--out", tmp_path / "run", "--logger", "mlflow",
        "--set", f"tracking.mlflow_uri={uri}", "--set", "train.progress=quiet",
    )  # fmt: skip
    assert result.returncode == 1 and result.stderr.startswith(f"error: MLflow at {uri}: "), result.stderr
    assert "Traceback" not in result.stderr
