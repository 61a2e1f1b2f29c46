import pytest

from radlab.core.errors import RadlabDataError
from radlab.tasks.mura.formats import (
    read_image_paths,
    read_labeled_studies,
    read_predictions,
    read_probabilities,
    resolve_data_root,
    study_key,
    study_type,
    write_predictions,
    write_probabilities,
)

FIRST = "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/image1.png"
SECOND = "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/image2.png"
THIRD = "MURA-v1.1/valid/XR_HAND/patient11186/study1_negative/image1.png"


def _csv(tmp_path, text, name="x.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_headerless_image_paths_keep_the_first_study(tmp_path, capsys):
    rows = read_image_paths(_csv(tmp_path, f"{FIRST}\n{SECOND}\n{THIRD}\n"))
    assert [r.path for r in rows] == [FIRST, SECOND, THIRD]
    assert [r.line for r in rows] == [1, 2, 3]
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("header", ["path", "Path", "image_path", "filename"])
def test_a_header_row_is_reported_and_skipped_never_silently(tmp_path, capsys, header):
    rows = read_image_paths(_csv(tmp_path, f"{header}\n{FIRST}\n{THIRD}\n"))
    assert [r.path for r in rows] == [FIRST, THIRD]
    err = capsys.readouterr().err
    assert "x.csv:1" in err and "header" in err


def test_a_bad_row_names_file_and_line(tmp_path):
    with pytest.raises(RadlabDataError, match=r"x\.csv:3: expected one image path"):
        read_image_paths(_csv(tmp_path, f"{FIRST}\n{SECOND}\nnot-a-path\n"))


def test_labeled_studies_headerless_with_and_without_header(tmp_path, capsys):
    body = "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/,1\nMURA-v1.1/valid/XR_HAND/p/study1_negative,0\n"
    rows = read_labeled_studies(_csv(tmp_path, body))
    assert [(r.study, r.label) for r in rows] == [
        ("MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/", 1),
        ("MURA-v1.1/valid/XR_HAND/p/study1_negative/", 0),
    ]
    assert len(read_labeled_studies(_csv(tmp_path, "Study,Label\n" + body))) == 2
    assert "skipping a header row 'Study,Label'" in capsys.readouterr().err


def test_test_format_takes_the_radiologists_majority(tmp_path):
    rows = read_labeled_studies(_csv(tmp_path, "a/b/,1,0,1\na/c/,0,0,1\n"))
    assert [r.label for r in rows] == [1, 0]


@pytest.mark.parametrize("row", ["a/b/,2", "a/b/,0.5", "a/b/", "a/b/,1,0"])
def test_bad_labels_name_the_line(tmp_path, row):
    with pytest.raises(RadlabDataError, match=r"x\.csv:2"):
        read_labeled_studies(_csv(tmp_path, f"a/a/,1\n{row}\n"))


def test_predictions_add_the_missing_slash_and_refuse_a_header(tmp_path):
    rows = read_predictions(_csv(tmp_path, "a/b,1\na/c/,0\n"))
    assert [(r.study, r.label) for r in rows] == [("a/b/", 1), ("a/c/", 0)]
    with pytest.raises(RadlabDataError, match="header row"):
        read_predictions(_csv(tmp_path, "Study,Model\na/b/,1\n"))
    with pytest.raises(RadlabDataError, match=":1: expected 'study/,0'"):
        read_predictions(_csv(tmp_path, "a/b/,0.93\n"))


def test_probabilities(tmp_path):
    assert [r.probability for r in read_probabilities(_csv(tmp_path, "a/b,0.25\n"))] == [0.25]
    with pytest.raises(RadlabDataError, match=":1:"):
        read_probabilities(_csv(tmp_path, "a/b,1.5\n"))


@pytest.mark.parametrize(
    ("path", "key", "kind"),
    [
        (FIRST, "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/", "WRIST"),
        (
            "MURA-v1.1/test/XR_FOREARM/patient1/study1/image3.png",
            "MURA-v1.1/test/XR_FOREARM/patient1/study1/",
            "FOREARM",
        ),
        ("data/HAND/case7/img.png", "data/HAND/case7/", "HAND"),
        ("elsewhere/img.png", "elsewhere/", None),
    ],
)
def test_study_key_and_type(path, key, kind):
    assert study_key(path) == key
    assert study_type(path) == kind


def test_writers_are_exact(tmp_path):
    write_predictions(tmp_path / "p.csv", [("a/b/", 1), ("a/c/", 0)])
    assert (tmp_path / "p.csv").read_bytes() == b"a/b/,1\na/c/,0\n"
    write_probabilities(tmp_path / "q.csv", [("a/b/", 0.25)])
    assert (tmp_path / "q.csv").read_text() == "a/b/,0.250000\n"


def test_data_root_accepts_the_parent_or_the_folder(tmp_path):
    (tmp_path / "MURA-v1.1").mkdir()
    assert resolve_data_root(tmp_path) == tmp_path
    assert resolve_data_root(tmp_path / "MURA-v1.1") == tmp_path
    with pytest.raises(RadlabDataError, match=r"no MURA-v1\.1"):
        resolve_data_root(tmp_path / "MURA-v1.1" / "...")
