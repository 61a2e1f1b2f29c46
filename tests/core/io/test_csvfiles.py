import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.io.csvfiles import iter_csv_rows


def test_line_numbers_skip_blank_lines_and_bom(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes("\ufeffa,1\n\n b , 2 \r\n,\n".encode())
    assert list(iter_csv_rows(path)) == [(1, ["a", "1"]), (3, ["b", "2"])]


@pytest.mark.parametrize(
    ("content", "reason", "line"),
    [(b"ok\n\xff\xfe\n", "not UTF-8", None), (None, "file not found", None)],
)
def test_unreadable_files(tmp_path, content, reason, line):
    path = tmp_path / "x.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RadlabDataError, match=reason) as caught:
        list(iter_csv_rows(path))
    assert str(path) in str(caught.value)


def _lines_then_bad(count: int) -> bytes:
    return b"".join(f"row{k},1\n".encode() for k in range(1, count)) + b"bad\xff,1\nafter,2\n"


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"\xff,1\n", 1),
        (b"ok,1\n\xfe\xff,2\n", 2),
        (_lines_then_bad(2501), 2501),
        ("\ufeffé,1\n".encode() + b"\xe9,2\n", 2),
    ],
)
def test_the_non_utf8_error_names_the_line_of_the_bad_byte(tmp_path, content, line):
    """Finding 16: the decoder works in 8 KB chunks, so the error used to name line 1, or 1889 for 2501."""
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(RadlabDataError, match="not UTF-8") as caught:
        list(iter_csv_rows(path))
    assert caught.value.line == line
