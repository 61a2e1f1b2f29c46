import numpy as np
import pytest

from radlab.core.errors import RadlabDataError
from radlab.tasks.mrnet.formats import (
    exam_key,
    plane_of,
    read_exam_paths,
    read_predictions,
    read_split_labels,
    read_task_labels,
    write_predictions,
)


def _csv(tmp_path, text, name="x.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("path", "plane", "key"),
    [
        ("MRNet-v1.0/valid/sagittal/1130.npy", "sagittal", "MRNet-v1.0/valid/*/1130.npy"),
        ("data/axial/0001.npy", "axial", "data/*/0001.npy"),
        ("cases/0001_coronal.npy", "coronal", "cases/0001_*.npy"),
    ],
)
def test_plane_and_exam_key(path, plane, key):
    assert plane_of(path) == plane
    assert exam_key(path, plane) == key


def test_exams_in_first_seen_order_with_planes_in_any_order(tmp_path):
    rows = [
        "MRNet-v1.0/valid/sagittal/1131.npy",
        "MRNet-v1.0/valid/axial/1131.npy",
        "MRNet-v1.0/valid/coronal/1131.npy",
        "MRNet-v1.0/valid/coronal/1130.npy",
        "MRNet-v1.0/valid/sagittal/1130.npy",
        "MRNet-v1.0/valid/axial/1130.npy",
    ]
    exams = read_exam_paths(_csv(tmp_path, "\n".join(rows)))
    assert [e.key for e in exams] == ["MRNet-v1.0/valid/*/1131.npy", "MRNet-v1.0/valid/*/1130.npy"]
    assert exams[1].planes["axial"] == (6, "MRNet-v1.0/valid/axial/1130.npy")


def test_a_missing_plane_warns_and_a_repeated_plane_fails(tmp_path, capsys):
    exams = read_exam_paths(_csv(tmp_path, "a/axial/0001.npy\na/sagittal/0001.npy\n"))
    assert set(exams[0].planes) == {"axial", "sagittal"}
    assert "lists no coronal" in capsys.readouterr().err
    with pytest.raises(RadlabDataError, match=r"x\.csv:2: axial given twice"):
        read_exam_paths(_csv(tmp_path, "a/axial/0001.npy\na/axial/0001.npy\n"))


@pytest.mark.parametrize("row", ["a/knee/0001.npy", "a/axial/0001.png", "a/axial/1.npy,extra"])
def test_bad_path_rows_name_the_line(tmp_path, row):
    with pytest.raises(RadlabDataError, match=r"x\.csv:2"):
        read_exam_paths(_csv(tmp_path, f"a/axial/0000.npy\n{row}\n"))


def test_label_ids_stay_four_digit_strings(tmp_path, capsys):
    labels = read_task_labels(_csv(tmp_path, "id,label\n0000,1\n7,0\n1249,1\n"))
    assert labels == {"0000": 1, "0007": 0, "1249": 1}
    assert "header" in capsys.readouterr().err
    with pytest.raises(RadlabDataError, match=r":2: expected 'NNNN,0'"):
        read_task_labels(_csv(tmp_path, "0000,1\n0001,2\n"))


def test_split_labels_must_cover_the_same_exams(tiny_mrnet):
    ids, labels = read_split_labels(tiny_mrnet, "valid")
    assert ids == sorted(ids) and labels.shape == (len(ids), 3)
    assert (labels[:, 1] <= labels[:, 0]).all() and (labels[:, 2] <= labels[:, 0]).all()  # tears imply abnormal
    acl = tiny_mrnet / "MRNet-v1.0" / "valid-acl.csv"
    acl.write_text(acl.read_text() + "9999,0\n")
    try:
        with pytest.raises(RadlabDataError, match="exams differ"):
            read_split_labels(tiny_mrnet, "valid")
    finally:
        acl.write_text("".join(acl.read_text().splitlines(keepends=True)[:-1]))


def test_predictions_round_trip_exactly(tmp_path):
    write_predictions(tmp_path / "p.csv", np.array([[0.1, 0.25, 1.0]]))
    assert (tmp_path / "p.csv").read_text() == "0.100000,0.250000,1.000000\n"
    assert read_predictions(tmp_path / "p.csv").tolist() == [[0.1, 0.25, 1.0]]
    with pytest.raises(RadlabDataError, match="header row"):
        read_predictions(_csv(tmp_path, "p_abnormal,p_acl,p_meniscus\n0.1,0.2,0.3\n"))
