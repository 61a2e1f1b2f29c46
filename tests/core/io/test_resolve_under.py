"""Paths read from CSV files stay under the data root unless the user allows otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.io import resolve_under


@pytest.mark.parametrize(
    ("relative", "allowed", "expected"),
    [
        ("MURA-v1.1/valid/a.png", False, "root/MURA-v1.1/valid/a.png"),
        ("x/../y.png", False, "root/x/../y.png"),  # stays inside: fine
        ("../etc/passwd", False, None),
        ("x/../../y.png", False, None),
        ("/etc/passwd", False, None),
        ("/data/a.png", True, "/data/a.png"),
        ("../b.png", True, "root/../b.png"),
    ],
)
def test_paths_resolve_under_the_root(relative, allowed, expected):
    if expected is None:
        with pytest.raises(RadlabDataError, match=r"in\.csv:7: .*allow-outside-root"):
            resolve_under("root", relative, allow_outside=allowed, source="in.csv", line=7)
    else:
        assert resolve_under("root", relative, allow_outside=allowed, source="in.csv", line=7) == Path(expected)
