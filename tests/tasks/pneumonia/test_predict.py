import json
import shutil

import numpy as np
import pytest

from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.tasks.pneumonia.formats import SUBMISSION_HEADER, TEST_IMAGES, read_submission
from radlab.tasks.pneumonia.predict import predict_folder
from radlab.tasks.pneumonia.synth import TEST_TRUTH
from tests.conftest import run_cli


def test_run_directory_keeps_the_threshold_and_the_sweep(tiny_pneumonia_run):
    run = RunDir(tiny_pneumonia_run)
    post = run.read_json("postprocess.json")
    assert post["nms_iou"] == 0.05 and post["relative_prune"] == 0.5 and post["score_threshold"] is not None
    sweep = run.file("threshold_sweep.csv").read_text().splitlines()
    assert sweep[0].startswith("epoch,0.05,0.1") and len(sweep) == 2
    assert set(json.loads(run.metrics.read_text())) >= {"epoch", "map", "score_threshold", "sweep"}


def test_submission_has_one_row_per_dicom_and_round_trips_through_the_evaluator(
    tiny_pneumonia_run, tiny_pneumonia, tmp_path
):
    images = sorted((tiny_pneumonia / TEST_IMAGES).glob("*.dcm"))
    result = run_cli(
        "pneumonia",
        "predict",
        tiny_pneumonia / TEST_IMAGES,
        tmp_path / "sub.csv",
        "--model",
        tiny_pneumonia_run,
        "--threshold",
        "0.0",
    )
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "sub.csv").read_text().splitlines()
    assert lines[0] == ",".join(SUBMISSION_HEADER)
    assert [line.split(",")[0] for line in lines[1:]] == [p.stem for p in images]
    submitted = read_submission(tmp_path / "sub.csv")
    for prediction in submitted.values():
        assert (prediction.boxes[:, :2] >= -1).all() and (
            prediction.boxes[:, :2] + prediction.boxes[:, 2:] <= 129
        ).all()
    scored = run_cli("pneumonia", "evaluate", tiny_pneumonia / TEST_TRUTH, tmp_path / "sub.csv")
    assert scored.returncode == 0
    report = json.loads(scored.stdout)
    assert 0.0 <= report["mAP"] <= 1.0 and list(report["precision_at"]) == [f"{0.4 + 0.05 * i:.2f}" for i in range(8)]


def test_an_unreadable_dicom_still_gets_its_row(tiny_pneumonia_run, tiny_pneumonia, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(tiny_pneumonia / TEST_IMAGES, folder)
    broken = sorted(folder.glob("*.dcm"))[0]
    broken.write_bytes(broken.read_bytes()[:300])
    result = run_cli("pneumonia", "predict", folder, tmp_path / "sub.csv", "--model", tiny_pneumonia_run)
    assert result.returncode == 0 and broken.name in result.stderr and "written with no box" in result.stderr
    assert read_submission(tmp_path / "sub.csv")[broken.stem].boxes.shape == (0, 4)
    strict = run_cli("pneumonia", "predict", folder, tmp_path / "s.csv", "--model", tiny_pneumonia_run, "--strict")
    assert strict.returncode == 1 and not (tmp_path / "s.csv").exists()


def test_an_ensemble_of_one_model_twice_equals_the_model(tiny_pneumonia_run, tiny_pneumonia, tmp_path):
    folder = tiny_pneumonia / TEST_IMAGES
    predict_folder(folder, tmp_path / "one.csv", [tiny_pneumonia_run], threshold=0.0)
    predict_folder(folder, tmp_path / "two.csv", [tiny_pneumonia_run, tiny_pneumonia_run], threshold=0.0)
    one, two = read_submission(tmp_path / "one.csv"), read_submission(tmp_path / "two.csv")
    for patient in one:
        np.testing.assert_allclose(one[patient].boxes, two[patient].boxes, atol=0.051)
        np.testing.assert_allclose(one[patient].scores, two[patient].scores, atol=1e-4)


def test_evaluate_refuses_an_unknown_patient(tiny_pneumonia, tmp_path):
    (tmp_path / "sub.csv").write_text("patientId,PredictionString\nnobody,0.5 1 2 3 4\n")
    result = run_cli("pneumonia", "evaluate", tiny_pneumonia / TEST_TRUTH, tmp_path / "sub.csv")
    assert result.returncode == 1 and "not in synthetic_test_labels.csv" in result.stderr


def test_predict_through_the_cache_writes_the_same_submission(tiny_pneumonia_run, tiny_pneumonia, tmp_path):
    runs = {}
    for name, cache in (("plain", "null"), ("cached", str(tmp_path / "cache"))):
        runs[name] = tmp_path / name
        shutil.copytree(tiny_pneumonia_run, runs[name])
        config = runs[name] / "config.yaml"
        text = config.read_text()
        assert "cache_dir: null" in text and "score_floor: 0.025" in text
        # every anchor kept (one epoch scores them all under the floor): boxes to compare
        config.write_text(
            text.replace("cache_dir: null", f"cache_dir: {cache}").replace("score_floor: 0.025", "score_floor: 0.0")
        )
    predict_folder(tiny_pneumonia / TEST_IMAGES, tmp_path / "plain.csv", [runs["plain"]], threshold=0.0)
    assert sum(len(p.scores) for p in read_submission(tmp_path / "plain.csv").values()) > 0
    for name in ("first.csv", "second.csv"):  # builds the store, then reads it
        predict_folder(tiny_pneumonia / TEST_IMAGES, tmp_path / name, [runs["cached"]], threshold=0.0)
        assert (tmp_path / name).read_text() == (tmp_path / "plain.csv").read_text()
    assert len(list((tmp_path / "cache").rglob("data-*.npy"))) == 1


POSTPROCESS_EDITS = {
    "missing relative_prune": lambda p: p.pop("relative_prune"),
    "a word for the threshold": lambda p: p.update(score_threshold="high"),
    "NaN threshold": lambda p: p.update(score_threshold=float("nan")),
    "threshold above 1": lambda p: p.update(score_threshold=1.5),
}


@pytest.mark.parametrize("edit", POSTPROCESS_EDITS.values(), ids=POSTPROCESS_EDITS.keys())
def test_a_damaged_postprocess_file_is_one_line_naming_it(tiny_pneumonia_run, tiny_pneumonia, tmp_path, edit):
    """Finding 9: a missing key or a string gave a traceback; a NaN threshold silently gave no boxes."""
    run = tmp_path / "run"
    shutil.copytree(tiny_pneumonia_run, run)
    post = json.loads((run / "postprocess.json").read_text())
    edit(post)
    (run / "postprocess.json").write_text(json.dumps(post))
    with pytest.raises(RadlabDataError, match=r"postprocess\.json: "):
        predict_folder(tiny_pneumonia / TEST_IMAGES, tmp_path / "out.csv", [run])
    assert not (tmp_path / "out.csv").exists()


def test_upper_case_suffixes_and_subfolders_are_predicted(tiny_pneumonia_run, tiny_pneumonia, tmp_path):
    """Finding 21: `X.DCM` files and subfolders were skipped silently."""
    folder = tmp_path / "in"
    paths = sorted((tiny_pneumonia / TEST_IMAGES).glob("*.dcm"))
    for k, path in enumerate(paths):
        target = folder / (f"site{k % 2}" if k % 3 else "") / (path.stem + (".DCM" if k % 2 else ".dcm"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    summary = predict_folder(folder, tmp_path / "out.csv", [tiny_pneumonia_run], threshold=0.0)
    assert summary.images == len(paths)
    assert sorted(read_submission(tmp_path / "out.csv")) == sorted(p.stem for p in paths)
