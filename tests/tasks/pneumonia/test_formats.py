import numpy as np
import pytest

from radlab.core.errors import RadlabDataError
from radlab.tasks.pneumonia.formats import (
    Prediction,
    read_box_labels,
    read_class_info,
    read_submission,
    write_submission,
)

LABELS = """patientId,x,y,width,height,Target
neg,,,,,0
pos,264.0,152.0,213.0,379.0,1
pos,562.0,152.0,256.0,453.0,1
"""


def _csv(tmp_path, text, name="x.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_box_labels_one_row_per_box_and_empty_for_negatives(tmp_path):
    labels = read_box_labels(_csv(tmp_path, LABELS))
    assert list(labels) == ["neg", "pos"]
    assert labels["neg"].shape == (0, 4)
    assert labels["pos"].tolist() == [[264, 152, 213, 379], [562, 152, 256, 453]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("patientId,x,y,w,h,Target\n", "expected the header"),
        (LABELS + "neg,1,2,3,4,1\n", "Target 0 and Target 1"),
        (LABELS + "odd,1,2,3,4,0\n", "a Target 0 row has coordinates"),
        (LABELS + "odd,1,2,,4,1\n", "four numbers"),
        (LABELS + "odd,1,2,0,4,1\n", "no area"),
        (LABELS + "odd,1,2,3,4,2\n", "expected patientId"),
    ],
)
def test_bad_label_files_name_the_line(tmp_path, body, message):
    with pytest.raises(RadlabDataError, match=message) as caught:
        read_box_labels(_csv(tmp_path, body))
    assert "x.csv:" in str(caught.value)


def test_class_info_is_deduplicated_and_checked(tmp_path):
    body = "patientId,class\nneg,Normal\npos,Lung Opacity\npos,Lung Opacity\nother,No Lung Opacity / Not Normal\n"
    assert read_class_info(_csv(tmp_path, body)) == {
        "neg": "Normal",
        "pos": "Lung Opacity",
        "other": "No Lung Opacity / Not Normal",
    }
    with pytest.raises(RadlabDataError, match=":3: patient neg has two classes"):
        read_class_info(_csv(tmp_path, "patientId,class\nneg,Normal\nneg,Lung Opacity\n"))
    with pytest.raises(RadlabDataError, match="one of"):
        read_class_info(_csv(tmp_path, "patientId,class\nneg,normal\n"))


def test_submission_exact_format_and_round_trip(tmp_path):
    rows = [
        ("a", Prediction(np.array([[10, 20, 30, 40], [1, 2, 3, 4]], dtype=float), np.array([0.5, 0.9]))),
        ("b", Prediction(np.zeros((0, 4)), np.zeros(0))),
    ]
    write_submission(tmp_path / "s.csv", rows)
    assert (tmp_path / "s.csv").read_text() == (
        "patientId,PredictionString\na,0.9000 1.0 2.0 3.0 4.0 0.5000 10.0 20.0 30.0 40.0\nb,\n"
    )
    back = read_submission(tmp_path / "s.csv")
    assert back["a"].scores.tolist() == [0.9, 0.5] and back["a"].boxes[1].tolist() == [10, 20, 30, 40]
    assert back["b"].boxes.shape == (0, 4)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("patientId,Prediction\n", "expected the header"),
        ("patientId,PredictionString\na,0.5 1 2 3\n", "not groups of 5"),
        ("patientId,PredictionString\na,0.5 1 2 3 x\n", "non-number"),
        ("patientId,PredictionString\na,\na,\n", "appears twice"),
        # finding 26: these were scored, a NaN confidence as a valid box (mAP 1.0)
        ("patientId,PredictionString\na,nan 1 2 3 4\n", "NaN or infinity"),
        ("patientId,PredictionString\na,inf 1 2 3 4\n", "NaN or infinity"),
        ("patientId,PredictionString\na,0.5 nan 2 3 4\n", "NaN or infinity"),
        ("patientId,PredictionString\na,0.5 1 2 inf 4\n", "NaN or infinity"),
        ("patientId,PredictionString\na,-0.5 1 2 3 4\n", "negative confidence"),
    ],
)
def test_bad_submissions(tmp_path, body, message):
    with pytest.raises(RadlabDataError, match=message):
        read_submission(_csv(tmp_path, body))
