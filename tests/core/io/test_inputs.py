"""A file or a folder as input: the files to read, or one clear error."""

from __future__ import annotations

import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.io.inputs import input_files


@pytest.mark.parametrize(
    ("names", "given", "expected"),
    [
        (["b.PNG", "a.png", "c.txt"], ".", ["a.png", "b.PNG"]),
        (["b.png", "c.txt"], "c.txt", ["c.txt"]),  # a file is taken as given, whatever its suffix
    ],
)
def test_files_of_a_folder_or_the_file_itself(tmp_path, names, given, expected):
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    found = input_files(tmp_path / given, (".png", ".jpg"), "radiograph")
    assert [p.name for p in found] == expected


@pytest.mark.parametrize(("make", "message"), [(False, "no such file or folder"), (True, r"holds no radiograph")])
def test_missing_or_empty_input_is_a_data_error(tmp_path, make, message):
    target = tmp_path / "in"
    if make:
        target.mkdir()
        (target / "notes.txt").write_text("x")
    with pytest.raises(RadlabDataError, match=message):
        input_files(target, (".png",), "radiograph")
