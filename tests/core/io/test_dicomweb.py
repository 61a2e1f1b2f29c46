"""STOW-RS of DICOM results to a real Orthanc (the one .ci/orthanc.sh starts: RADLAB_ORTHANC_URL), found
again by QIDO-RS and fetched back by WADO-RS; a server that refuses or cannot be reached is one line."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.sr.coding import Code

from radlab.core.errors import RadlabError
from radlab.core.io.dicom_results import SCHEME, Finding, read_sources, secondary_capture, structured_report
from radlab.core.io.dicomweb import client, fetch_instance, find_instances, stow

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")


@pytest.fixture()
def orthanc_url() -> str:
    """The DICOMweb root of the test Orthanc; skipped without one unless RADLAB_ORTHANC_TESTS=required."""
    url = os.environ.get("RADLAB_ORTHANC_URL")
    if not url:
        if os.environ.get("RADLAB_ORTHANC_TESTS") == "required":
            pytest.fail("RADLAB_ORTHANC_TESTS=required but RADLAB_ORTHANC_URL is unset (source .ci/orthanc.sh)")
        pytest.skip("no Orthanc: source .ci/orthanc.sh to run the DICOMweb tests")
    return url


def _report():
    (source,) = read_sources([get_testdata_file("CT_small.dcm")])
    finding = Finding(source, Code("opacity", SCHEME, "Opacity"), 0.75, (3.0, 4.0, 5.0, 6.0))
    return source, structured_report([source], [finding], title="radlab test", algorithm="radlab", version="1")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_stowed_report_is_found_and_fetched_back_unchanged(orthanc_url):
    source, sr = _report()
    sc = secondary_capture(source, np.full((source.Rows, source.Columns, 3), 9, np.uint8), description="boxes")
    stow(orthanc_url, [sr, sc])
    for ds in (sr, sc):
        (found,) = find_instances(orthanc_url, SOPInstanceUID=str(ds.SOPInstanceUID))
        assert found["00080018"]["Value"] == [ds.SOPInstanceUID]  # SOPInstanceUID, in DICOM JSON
        assert found["0020000D"]["Value"] == [source.StudyInstanceUID]
    back = fetch_instance(orthanc_url, sr.StudyInstanceUID, sr.SeriesInstanceUID, sr.SOPInstanceUID)
    assert back.SOPClassUID == sr.SOPClassUID and back.ContentSequence == sr.ContentSequence
    assert back.CurrentRequestedProcedureEvidenceSequence == sr.CurrentRequestedProcedureEvidenceSequence
    picture = fetch_instance(orthanc_url, sc.StudyInstanceUID, sc.SeriesInstanceUID, sc.SOPInstanceUID)
    assert (picture.pixel_array == 9).all()


def test_a_wrong_path_on_the_server_is_refused_in_one_line(orthanc_url):
    _, sr = _report()
    url = orthanc_url.rsplit("/", 1)[0] + "/no-such-root"
    with pytest.raises(RadlabError) as caught:
        stow(url, [sr])
    assert str(caught.value) == f"{url}: STOW-RS refused (HTTP 404 Not Found)"


@pytest.mark.parametrize("what", ["stow", "find"])
def test_an_unreachable_server_is_one_line_naming_it(what):
    url = f"http://127.0.0.1:{_closed_port()}/dicom-web"
    _, sr = _report()
    with pytest.raises(RadlabError) as caught:
        if what == "stow":
            stow(url, [sr])
        else:
            find_instances(url, SOPInstanceUID=str(sr.SOPInstanceUID))
    message = str(caught.value)
    assert message.startswith(f"{url}: ") and "unreachable" in message and "\n" not in message


def test_the_bearer_token_is_sent():
    web = client("http://127.0.0.1:1/dicom-web", token="s3cret")
    assert web._session.headers["Authorization"] == "Bearer s3cret"
