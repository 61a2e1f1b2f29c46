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
