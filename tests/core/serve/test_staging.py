"""A client's file names never become paths, and a request's folder is gone when it ends, however it ends."""

from __future__ import annotations

import io

import pytest

from radlab.core.serve.staging import safe_name, staged


@pytest.mark.parametrize(
    ("raw", "index", "expected"),
    [
        ("image1.png", 0, "image1.png"),
        ("../../etc/passwd", 0, "passwd"),
        ("C:\\Users\\x\\scan.dcm", 0, "scan.dcm"),
        (".hidden.png", 0, "hidden.png"),
        ("a b;c$(rm).png", 0, "a_b_c_rm_.png"),
        ("", 3, "file3"),
        (None, 1, "file1"),
        ("..", 2, "file2"),
        ("x" * 300 + ".png", 0, "x" * 116 + ".png"),
    ],
)
def test_a_client_name_is_made_a_safe_file_name(raw, index, expected):
    assert safe_name(raw, index) == expected


def test_names_are_made_unique_and_given_the_suffix_the_reader_lists(tmp_path):
    uploads = [("slice", io.BytesIO(b"a")), ("slice", io.BytesIO(b"b")), ("x.DCM", io.BytesIO(b"c"))]
    with staged(tmp_path, uploads, ".dcm") as request:
        assert [f.name for f in request.files] == ["slice.dcm", "slice-2.dcm", "x.DCM"]
        assert [f.path.read_bytes() for f in request.files] == [b"a", b"b", b"c"]
        assert all(f.path.parent == request.folder for f in request.files)
    assert list(tmp_path.iterdir()) == []


def test_the_request_folder_is_removed_when_the_work_fails(tmp_path):
    with pytest.raises(RuntimeError), staged(tmp_path, [("a.png", io.BytesIO(b"x"))]):
        raise RuntimeError("the prediction failed")
    assert list(tmp_path.iterdir()) == []
