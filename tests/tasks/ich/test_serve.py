"""ICH's serve batches: requests share a predict folder only when their series do not overlap."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from radlab.core.serve.spec import ServeRequest
from radlab.tasks.ich.serve import _groups


def _header(series: str) -> Dataset:
    ds = Dataset()
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "p", "1.2", series
    return ds


def test_a_series_is_never_doubled_and_an_unreadable_request_goes_alone():
    requests = [ServeRequest(key, Path(key), ()) for key in ("a", "b", "c", "d", "e")]
    headers = {
        "a": [_header("1.1"), _header("1.1")],
        "b": [_header("1.2")],  # another series: joins a
        "c": [_header("1.1")],  # a's series again: a group of its own
        "d": None,  # a header that does not read: alone, never joined
        "e": [_header("1.3")],
    }
    groups = [[r.key for r in group] for group in _groups(requests, headers)]
    assert groups == [["a", "b", "e"], ["c"], ["d"]]
