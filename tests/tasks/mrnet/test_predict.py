import json
import shutil

import numpy as np
import pytest

from radlab.core.infer.bundle import build_bundle
from radlab.core.task import get_task
from radlab.tasks.mrnet.formats import PLANES, read_predictions, read_split_labels
from radlab.tasks.mrnet.predict import predict_csv
from tests.conftest import run_cli


def _paths(ids, order_of_planes):
    return "".join(
        f"MRNet-v1.0/valid/{plane}/{exam_id}.npy\n"
        for exam_id, planes in zip(ids, order_of_planes, strict=True)
        for plane in planes
    )


@pytest.fixture()
def valid_ids(tiny_mrnet):
    ids, _ = read_split_labels(tiny_mrnet, "valid")
    return ids


def test_row_i_is_exam_i_whatever_the_plane_order(tiny_mrnet_run, tiny_mrnet, valid_ids, tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "a.csv").write_text(_paths(valid_ids, [PLANES] * len(valid_ids)))
    (tmp_path / "b.csv").write_text(_paths(valid_ids, [rng.permutation(PLANES) for _ in valid_ids]))
    reordered = list(reversed(valid_ids))
    (tmp_path / "c.csv").write_text(_paths(reordered, [rng.permutation(PLANES) for _ in valid_ids]))
    for name in "abc":
        predict_csv(tmp_path / f"{name}.csv", tmp_path / f"{name}.out", tiny_mrnet_run, tiny_mrnet, batch_size=3)
    a, b, c = (read_predictions(tmp_path / f"{n}.out") for n in "abc")
    assert a.shape == (len(valid_ids), 3)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a[::-1], c, atol=1e-6)


def test_a_missing_or_corrupt_plane_is_predicted_from_the_others(tiny_mrnet_run, tiny_mrnet, valid_ids, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_mrnet / "MRNet-v1.0" / "valid", data / "MRNet-v1.0" / "valid")
    (data / f"MRNet-v1.0/valid/coronal/{valid_ids[0]}.npy").unlink()
    (data / f"MRNet-v1.0/valid/axial/{valid_ids[1]}.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "in.csv").write_text(_paths(valid_ids, [PLANES] * len(valid_ids)))
    result = run_cli(
        "mrnet", "predict", tmp_path / "in.csv", tmp_path / "out.csv", "--model", tiny_mrnet_run, "--data-root", data
    )
    assert result.returncode == 0, result.stderr
    assert "in.csv:2: " in result.stderr and f"coronal/{valid_ids[0]}.npy: file not found" in result.stderr
    assert "in.csv:4: " in result.stderr and f"axial/{valid_ids[1]}.npy: not a readable .npy" in result.stderr
    predicted = read_predictions(tmp_path / "out.csv")
    assert predicted.shape == (len(valid_ids), 3)

    # the same exam with the broken plane simply left out of the input gives the same row
    (tmp_path / "two.csv").write_text(
        f"MRNet-v1.0/valid/axial/{valid_ids[0]}.npy\nMRNet-v1.0/valid/sagittal/{valid_ids[0]}.npy\n"
    )
    predict_csv(tmp_path / "two.csv", tmp_path / "two.out", tiny_mrnet_run, data)
    np.testing.assert_allclose(read_predictions(tmp_path / "two.out")[0], predicted[0], atol=1e-6)

    strict = run_cli(
        "mrnet",
        "predict",
        tmp_path / "in.csv",
        tmp_path / "s.csv",
        "--model",
        tiny_mrnet_run,
        "--data-root",
        data,
        "--strict",
    )
    assert strict.returncode == 1 and not (tmp_path / "s.csv").exists()


def test_an_exam_with_no_usable_plane_gets_the_prevalence(tiny_mrnet_run, tiny_mrnet, valid_ids, tmp_path, capsys):
    nowhere = "nowhere/axial/0001.npy\nnowhere/coronal/0001.npy\nnowhere/sagittal/0001.npy\n"
    (tmp_path / "in.csv").write_text(_paths(valid_ids[:1], [PLANES]) + nowhere)
    summary = predict_csv(tmp_path / "in.csv", tmp_path / "out.csv", tiny_mrnet_run, tiny_mrnet, num_workers=0)
    assert summary.fallback_exams == ["nowhere/*/0001.npy"]
    fusion_prevalence = json.loads((tiny_mrnet_run / "fusion.json").read_text())["prevalence"]
    assert read_predictions(tmp_path / "out.csv")[1].tolist() == pytest.approx(
        list(fusion_prevalence.values()), abs=1e-6
    )
    assert "no usable plane" in capsys.readouterr().err


@pytest.mark.parametrize(
    "sagittal",
    [
        "./MRNet-v1.0/valid/sagittal/{}.npy",
        "MRNet-v1.0//valid/sagittal/{}.npy",
        "MRNet-v1.0/x/../valid/sagittal/{}.npy",
    ],
)
def test_two_spellings_of_one_folder_are_one_exam(tiny_mrnet_run, tiny_mrnet, valid_ids, tmp_path, sagittal):
    """Finding 27: `./MRNet-v1.0/valid/...` made a separate exam, and every later row shifted."""
    exam = valid_ids[0]
    rows = [f"MRNet-v1.0/valid/axial/{exam}.npy", f"MRNet-v1.0/valid/coronal/{exam}.npy", sagittal.format(exam)]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    summary = predict_csv(tmp_path / "in.csv", tmp_path / "out.csv", tiny_mrnet_run, tiny_mrnet, num_workers=0)
    assert summary.exams == 1 and len(read_predictions(tmp_path / "out.csv")) == 1


def test_codalab_bundle(tiny_mrnet_run, tiny_mrnet, valid_ids, tmp_path):
    import subprocess
    import sys

    build_bundle(get_task("mrnet"), tiny_mrnet_run, tmp_path / "bundle")
    (tiny_mrnet / "in.csv").write_text(_paths(valid_ids, [PLANES] * len(valid_ids)))
    try:
        result = subprocess.run(
            [sys.executable, str(tmp_path / "bundle/src/predict.py"), "in.csv", str(tmp_path / "out.csv")],
            cwd=tiny_mrnet,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        predict_csv(tiny_mrnet / "in.csv", tmp_path / "expected.csv", tiny_mrnet_run, tiny_mrnet)
    finally:
        (tiny_mrnet / "in.csv").unlink()
    assert (tmp_path / "out.csv").read_text() == (tmp_path / "expected.csv").read_text()
