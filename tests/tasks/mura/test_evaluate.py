"""The evaluator against an independent, straightforward re-implementation of the official script."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from radlab.core.errors import RadlabDataError
from radlab.tasks.mura.evaluate import evaluate_files
from tests.conftest import run_cli

PARTS = ["Elbow", "Finger", "Forearm", "Hand", "Humerus", "Shoulder", "Wrist"]


def reference_evaluate(annotations_path, predictions_path):
    """What competitions/mura/evaluate.py does, written plainly with pandas and scikit-learn."""
    annotations = pd.read_csv(annotations_path, header=None)
    if annotations.shape[1] == 4:
        annotations.columns = ["Study", "Rad1", "Rad2", "Rad3"]
        annotations["Label"] = annotations[["Rad1", "Rad2", "Rad3"]].mode(axis=1)[0]
    else:
        annotations.columns = ["Study", "Label"]
    predictions = pd.read_csv(predictions_path, header=None, names=["Study", "Model"])
    predictions["Study"] = predictions["Study"].apply(lambda x: x if x.endswith("/") else x + "/")
    combined = annotations.merge(predictions, on="Study", how="inner")
    assert combined.shape[0] == predictions.shape[0]
    results = {}
    for part in [*PARTS, "/"]:
        rows = combined[combined["Study"].str.contains(part.upper(), regex=False)]
        cnf = confusion_matrix(rows["Label"].to_numpy(), rows["Model"].to_numpy())
        row_marg, col_marg = cnf.sum(axis=1), cnf.sum(axis=0)
        n = row_marg.sum()
        p_e = np.sum(col_marg * row_marg) / n / n
        p_o = (cnf[0][0] + cnf[1][1]) / n
        kappa = (p_o - p_e) / (1 - p_e)
        se = (p_o * (1 - p_o)) / (n * (1 - p_e) ** 2)
        name = "Overall" if part == "/" else part
        results[f"{name}_Mean"], results[f"{name}_Lower"], results[f"{name}_Upper"] = (
            kappa,
            kappa - 1.96 * se,
            kappa + 1.96 * se,
        )
    return results


def random_files(tmp_path, seed, radiologists=False):
    rng = np.random.default_rng(seed)
    studies, truth = [], []
    for part in PARTS:
        for i in range(int(rng.integers(12, 40))):
            studies.append(f"MURA-v1.1/test/XR_{part.upper()}/patient{rng.integers(1e5):05d}/study{i}/")
            truth.append(i % 2 if i < 2 else int(rng.random() < 0.4))
    truth = np.array(truth)
    lines = []
    for study, label in zip(studies, truth, strict=True):
        if radiologists:
            votes = [label if rng.random() < 0.8 else 1 - label for _ in range(3)]
            lines.append(f"{study},{votes[0]},{votes[1]},{votes[2]}")
        else:
            lines.append(f"{study},{label}")
    (tmp_path / "truth.csv").write_text("\n".join(lines) + "\n")
    chosen = [i for i in rng.permutation(len(studies)) if rng.random() < 0.9]
    chosen = sorted(set(chosen) | {j for j in range(len(studies)) if j % 40 < 2})
    rng.shuffle(chosen)
    probs = np.clip(truth * 0.35 + rng.random(len(studies)) * 0.65, 0, 1)
    pred_lines, prob_lines = [], []
    for i in chosen:
        label = int(rng.random() < 0.8) * truth[i] + int(rng.random() < 0.2) * (1 - truth[i])
        name = studies[i][:-1] if rng.random() < 0.3 else studies[i]
        pred_lines.append(f"{name},{label}")
        prob_lines.append(f"{studies[i]},{probs[i]:.6f}")
    (tmp_path / "pred.csv").write_text("\n".join(pred_lines) + "\n")
    (tmp_path / "prob.csv").write_text("\n".join(prob_lines) + "\n")
    return tmp_path / "truth.csv", tmp_path / "pred.csv", tmp_path / "prob.csv"


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("radiologists", [False, True])
def test_matches_the_reference_on_random_files(tmp_path, seed, radiologists):
    truth, pred, _ = random_files(tmp_path, seed, radiologists)
    ours, _ = evaluate_files(truth, pred)
    expected = reference_evaluate(truth, pred)
    assert list(ours) == list(expected)
    for key, value in expected.items():
        assert abs(ours[key] - value) < 1e-9, key


def test_interval_has_no_square_root(tmp_path):
    (tmp_path / "t.csv").write_text("a/XR_ELBOW/1/,1\na/XR_ELBOW/2/,1\na/XR_ELBOW/3/,0\na/XR_ELBOW/4/,0\n")
    (tmp_path / "p.csv").write_text("a/XR_ELBOW/1,1\na/XR_ELBOW/2,0\na/XR_ELBOW/3,0\na/XR_ELBOW/4,0\n")
    scores, _ = evaluate_files(tmp_path / "t.csv", tmp_path / "p.csv")
    assert scores["Elbow_Mean"] == pytest.approx(0.5, abs=1e-12)
    assert scores["Elbow_Upper"] - scores["Elbow_Mean"] == pytest.approx(0.3675, abs=1e-12)
    assert scores["Finger_Mean"] is None  # no finger study: the official script would crash


def test_details_confusion_and_auroc(tmp_path):
    truth, pred, prob = random_files(tmp_path, 3)
    _, details = evaluate_files(truth, pred, prob)
    t = pd.read_csv(truth, header=None, names=["s", "y"]).set_index("s")["y"]
    p = pd.read_csv(prob, header=None, names=["s", "p"]).set_index("s")["p"]
    labels = pd.read_csv(pred, header=None, names=["s", "m"])
    labels["s"] = labels["s"].where(labels["s"].str.endswith("/"), labels["s"] + "/")
    y, m = t[labels["s"]].to_numpy(), labels["m"].to_numpy()
    (tn, fp), (fn, tp) = confusion_matrix(y, m)
    assert details["Overall"]["confusion_matrix"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert details["Overall"]["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert details["Overall"]["specificity"] == pytest.approx(tn / (tn + fp))
    assert details["Overall"]["auroc"] == pytest.approx(roc_auc_score(y, p[labels["s"]].to_numpy()), abs=1e-12)


def test_cli_prints_the_official_line_and_json_details(tmp_path):
    truth, pred, prob = random_files(tmp_path, 5)
    result = run_cli("mura", "evaluate", truth, pred)
    assert result.returncode == 0
    line = json.loads(result.stdout)
    assert list(line) == list(reference_evaluate(truth, pred))
    detailed = json.loads(run_cli("mura", "evaluate", truth, pred, "--json", "--probs", prob).stdout)
    assert "auroc" in detailed["details"]["Wrist"] and detailed["Overall_Mean"] == line["Overall_Mean"]


@pytest.mark.parametrize(
    ("predictions", "message"),
    [
        ("MURA-v1.1/test/XR_HAND/unknown/study1/,1\n", "is not in truth.csv"),
        ("Study,Model\n", "header row"),
        ("a,b,c\n", "expected 'study/,0'"),
        ("", "no predictions"),
    ],
)
def test_cli_unknown_study_or_malformed_file_exits_1_with_one_line(tmp_path, predictions, message):
    truth, _, _ = random_files(tmp_path, 1)
    (tmp_path / "bad.csv").write_text(predictions)
    result = run_cli("mura", "evaluate", truth, tmp_path / "bad.csv")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr and "bad.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_study_listed_twice_in_probs_is_an_error_naming_the_line(tmp_path):
    """Finding 28: the last probability silently won."""
    truth, pred, prob = random_files(tmp_path, 2)
    lines = prob.read_text().splitlines()
    prob.write_text("\n".join([*lines, lines[0].split(",")[0] + ",0.123456"]) + "\n")
    with pytest.raises(
        RadlabDataError, match=rf"prob\.csv:{len(lines) + 1}: study .* listed twice \(first on line 1\)"
    ):
        evaluate_files(truth, pred, prob)
