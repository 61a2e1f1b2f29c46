import numpy as np
import pytest

from radlab.core.errors import RadlabDataError
from radlab.tasks.ich.formats import SUBTYPES, read_labels, read_submission, split_id, write_submission


def _csv(tmp_path, rows, name="x.csv"):
    path = tmp_path / name
    path.write_text("ID,Label\n" + "".join(f"{r}\n" for r in rows))
    return path


def _image(image, labels):
    return [f"{image}_{s},{v}" for s, v in zip(SUBTYPES, labels, strict=True)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ID_63eb1e259_epidural", ("ID_63eb1e259", "epidural")),
        ("ID_1_any", ("ID_1", "any")),
        ("63eb1e259_epidural", None),
        ("ID_63eb1e259_bleed", None),
    ],
)
def test_split_id(raw, expected):
    assert split_id(raw) == expected


def test_labels_pivot_to_six_columns_and_duplicates_are_dropped(tmp_path, capsys):
    rows = _image("ID_a", [0, 1, 0, 0, 0, 1]) + _image("ID_b", [0] * 6) + _image("ID_a", [0, 1, 0, 0, 0, 1])
    images, labels = read_labels(_csv(tmp_path, rows))
    assert images == ["ID_a", "ID_b"] and labels.tolist() == [[0, 1, 0, 0, 0, 1], [0] * 6]
    assert "6 repeated rows dropped" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([*_image("ID_a", [0] * 6), "ID_a_any,1"], "is 0 on line 7 and 1 here"),
        (_image("ID_a", [0] * 6)[:5], "lacks any"),
        (_image("ID_a", [0, 0, 0, 0, 0, 2]), "is not 0 or 1"),
        (["ID_a_epidural,0,extra"], "expected 'ID_<image>_<subtype>,<label>'"),
    ],
)
def test_bad_label_files(tmp_path, rows, message):
    with pytest.raises(RadlabDataError, match=message) as caught:
        read_labels(_csv(tmp_path, rows))
    assert "x.csv:" in str(caught.value)


def test_submission_six_rows_per_image_clipped(tmp_path):
    write_submission(tmp_path / "s.csv", ["ID_a", "ID_b"], np.array([[0.0, 0.5, 1.0, 0.2, 0.3, 0.9]] * 2))
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "ID,Label" and len(lines) == 13
    assert lines[1:4] == ["ID_a_epidural,0.000010", "ID_a_intraparenchymal,0.500000", "ID_a_intraventricular,0.999990"]
    images, probs = read_submission(tmp_path / "s.csv")
    assert images == ["ID_a", "ID_b"] and probs[0, 0] == 1e-5
