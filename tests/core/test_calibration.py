import json
import shutil

import numpy as np
import pytest

from radlab.core.calibration import (
    CALIBRATION_FILE,
    apply_temperature,
    calibrated,
    fit_run,
    fit_temperature,
    official_metric,
)
from radlab.core.metrics.calibration import expected_calibration_error
from radlab.core.report.cases import write_case_table


def _overconfident(temperature, n=20_000, seed=0):
    """Truth drawn from sigmoid(z); the model reports sigmoid(z * temperature), over-confident for T > 1."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    truth = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return truth, 1 / (1 + np.exp(-z * temperature))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_the_fit_recovers_a_known_temperature_and_ece_does_not_rise(temperature):
    truth, probs = _overconfident(temperature)
    fitted = fit_temperature(truth, probs)
    assert fitted == pytest.approx(temperature, rel=0.06)
    after = expected_calibration_error(truth, apply_temperature(probs, fitted))
    assert after <= expected_calibration_error(truth, probs) + 1e-3
    assert after < 0.02


@pytest.mark.parametrize("temperature", [2.0, 4.0])
def test_an_overconfident_model_loses_most_of_its_ece(temperature):
    truth, probs = _overconfident(temperature)
    before = expected_calibration_error(truth, probs)
    after = expected_calibration_error(truth, apply_temperature(probs, fit_temperature(truth, probs)))
    assert before > 0.08 and after < before / 4


@pytest.mark.parametrize(
    ("probs", "temperature", "expected"),
    [([0.5], 3.0, [0.5]), ([0.8], 1.0, [0.8]), ([0.8], 2.0, [2 / 3]), ([0.2], 0.5, [1 / 17])],
)
def test_apply_temperature(probs, temperature, expected):
    np.testing.assert_allclose(apply_temperature(np.array(probs), temperature), expected, rtol=1e-6)


def test_one_class_leaves_the_temperature_at_one():
    assert fit_temperature(np.ones(5), np.full(5, 0.7)) == 1.0


def test_the_official_metric_is_the_tasks_own_case_metric():
    from radlab.tasks.ich.evaluate import weighted_log_loss
    from radlab.tasks.ich.formats import SUBTYPES

    rng = np.random.default_rng(1)
    truth, probs = rng.integers(0, 2, (40, 6)), rng.random((40, 6))
    got = official_metric({"task": "ich"})(list(SUBTYPES), truth, probs)["weighted_log_loss"]
    assert got == pytest.approx(weighted_log_loss(truth, probs, clip=1e-5), rel=1e-12)


def test_fit_run_writes_the_record_and_calibrated_applies_it(tmp_path):
    truth, probs = _overconfident(3.0, n=2_000)
    write_case_table(tmp_path / "valid_predictions.csv", [f"c{i}" for i in range(2_000)], ["abnormal"], truth, probs)
    (tmp_path / "config.yaml").write_text("task: mura\npredict: {threshold: 0.5}\n")
    record = fit_run(tmp_path, bins=10)
    stored = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    assert stored == record and stored["bins"] == 10 and stored["cases"] == 2_000
    entry = stored["labels"]["abnormal"]
    assert entry["ece_after"] < entry["ece_before"] and entry["nll_after"] < entry["nll_before"]
    assert stored["official"]["before"] == stored["official"]["after"]  # kappa at 0.5: labels unchanged
    given = np.array([[0.9, 0.9], [0.1, 0.5]])
    out = calibrated(tmp_path, ["abnormal", "other"], given)
    np.testing.assert_allclose(out[:, 0], apply_temperature(given[:, 0], entry["temperature"]))
    np.testing.assert_array_equal(out[:, 1], given[:, 1])
    shutil.rmtree(tmp_path)
    tmp_path.mkdir()
    assert calibrated(tmp_path, ["abnormal"], given) is given


def test_radlab_calibrate_on_a_tiny_run_changes_predict_as_the_temperature_says(tiny_run, tiny_mura, tmp_path):
    from radlab.tasks.mura.predict import predict_csv
    from tests.conftest import csv_rows, run_radlab

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    result = run_radlab("calibrate", run, "--bins", "10")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("  abnormal: T ")
    temperature = json.loads((run / CALIBRATION_FILE).read_text())["labels"]["abnormal"]["temperature"]
    paths = tiny_mura / "MURA-v1.1" / "valid_image_paths.csv"
    for name, model in (("raw", tiny_run), ("calibrated", run)):
        predict_csv(paths, tmp_path / f"{name}.csv", model, tiny_mura, probabilities_csv=tmp_path / f"{name}-p.csv")
    raw, after = (np.array([float(p) for _, p in csv_rows(tmp_path / f"{n}-p.csv")]) for n in ("raw", "calibrated"))
    np.testing.assert_allclose(after, apply_temperature(raw, temperature), atol=1e-4)
    assert csv_rows(tmp_path / "raw.csv") == csv_rows(tmp_path / "calibrated.csv")  # labels at 0.5 unchanged
    assert run_radlab("report", run).returncode == 0
    assert "ECE before" in (run / "report.html").read_text()
    assert run_radlab("calibrate", tmp_path / "missing").stderr.count("\n") == 1
