import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from radlab.tasks.mrnet.formats import evaluate_files, official_scores, read_split_labels, write_predictions
from tests.conftest import run_cli


@pytest.mark.parametrize("seed", range(10))
def test_auroc_per_column_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, (120, 3))
    probs = np.round(np.clip(truth * 0.3 + rng.random((120, 3)) * 0.7, 0, 1), 2)
    scores = official_scores(truth, probs)
    expected = [roc_auc_score(truth[:, k], probs[:, k]) for k in range(3)]
    for key, value in zip(("Abnormal_AUROC", "ACL_AUROC", "Meniscus_AUROC"), expected, strict=True):
        assert abs(scores[key] - value) < 1e-12
    assert abs(scores["Average_AUROC"] - np.mean(expected)) < 1e-12
    assert list(scores) == ["Abnormal_AUROC", "ACL_AUROC", "Meniscus_AUROC", "Average_AUROC"]


def test_truth_from_official_csvs_in_the_order_of_a_paths_file(tiny_mrnet, tmp_path):
    ids, labels = read_split_labels(tiny_mrnet, "valid")
    order = list(reversed(range(len(ids))))
    paths = tmp_path / "paths.csv"
    paths.write_text(
        "".join(f"MRNet-v1.0/valid/{p}/{ids[i]}.npy\n" for i in order for p in ("sagittal", "axial", "coronal"))
    )
    write_predictions(tmp_path / "p.csv", labels[order] * 0.8 + 0.1)
    scores, _ = evaluate_files("valid", tmp_path / "p.csv", data_root=tiny_mrnet, paths_csv=paths)
    assert all(v in (1.0, None) for v in scores.values())


def test_cli_json_keys_and_row_count_mismatch(tmp_path):
    (tmp_path / "truth.csv").write_text("1,0,1\n0,0,0\n1,1,0\n")
    (tmp_path / "good.csv").write_text("0.9,0.2,0.8\n0.1,0.1,0.1\n0.8,0.7,0.3\n")
    (tmp_path / "short.csv").write_text("0.9,0.2,0.8\n0.1,0.1,0.1\n")
    result = run_cli("mrnet", "evaluate", tmp_path / "truth.csv", tmp_path / "good.csv")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {
        "Abnormal_AUROC": 1.0,
        "ACL_AUROC": 1.0,
        "Meniscus_AUROC": 1.0,
        "Average_AUROC": 1.0,
    }
    result = run_cli("mrnet", "evaluate", tmp_path / "truth.csv", tmp_path / "short.csv")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "short.csv: has 2 rows but the truth has 3 exams" in result.stderr


def test_an_average_over_fewer_than_three_tasks_is_warned(tmp_path, capsys):
    """Finding 17: `Meniscus_AUROC: null, Average_AUROC: 0.75` was the mean of two tasks, without a word."""
    (tmp_path / "truth.csv").write_text("1,0,1\n0,1,1\n1,1,1\n0,0,1\n")
    (tmp_path / "p.csv").write_text("0.9,0.2,0.8\n0.1,0.7,0.1\n0.8,0.1,0.3\n0.2,0.3,0.5\n")
    scores, _ = evaluate_files(tmp_path / "truth.csv", tmp_path / "p.csv")
    assert scores["Meniscus_AUROC"] is None and scores["Average_AUROC"] == pytest.approx((1.0 + 0.5) / 2)
    warned = capsys.readouterr().err
    assert "Meniscus_AUROC undefined" in warned and "mean of 2 tasks, not of three" in warned
