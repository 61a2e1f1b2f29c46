"""The service in this process (FastAPI's TestClient): every task's answers equal `radlab TASK predict`'s,
pictures come back, and bad input gets its 4xx JSON naming the file, leaves nothing behind and never stops
the service."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from radlab.core.serve.app import create_app
from radlab.core.serve.models import plan_models
from radlab.core.serve.service import Limits, Service
from radlab.core.serve.staging import new_scratch
from tests.conftest import run_radlab
from tests.core.serve.cases import CASES, assert_same, predicted

SERVED = ["mura", "mrnet", "pneumonia", "ich"]


@contextmanager
def serving(runs: list[Path], token: str | None = None, **limits: float) -> Iterator[tuple[TestClient, Service]]:
    """A started service over `runs` and a client of it, once every model is loaded."""
    service = Service(plan_models(runs, "torch"), new_scratch(), limits=Limits(**limits), device="cpu")
    with TestClient(create_app(service, token), raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        deadline = time.monotonic() + 120
        while client.get("/ready", headers=headers).status_code != 200:
            assert service.load_error is None, service.load_error
            assert time.monotonic() < deadline, "the models did not load"
            time.sleep(0.05)
        yield client, service


def post(client: TestClient, uploads: list[tuple[str, bytes | Path]], **params: str) -> object:
    files = [("files", (name, body.read_bytes() if isinstance(body, Path) else body)) for name, body in uploads]
    return client.post("/predict", files=files, params=params)


@pytest.mark.parametrize("name", SERVED)
def test_the_service_answers_as_predict_does_and_draws_the_pictures(name, tiny, tmp_path):
    data, run = tiny.data(name), tiny.run(name)
    cases = CASES[name](data)[:3]
    expected = predicted(name, data, run, cases, tmp_path)
    with serving([run]) as (client, service):
        listed = client.get("/models").json()
        assert [(m["name"], m["task"], m["engine"]) for m in listed] == [(run.name, name, "torch")]
        assert len(listed[0]["weights_sha256"]) == 64
        for case, want in zip(cases, expected, strict=True):
            reply = post(client, case)
            assert reply.status_code == 200, reply.text
            answer = reply.json()
            assert (answer["task"], answer["model"]) == (name, run.name)
            assert_same(name, answer["prediction"], want)
        reply = post(client, cases[0], explain="true")
        assert reply.status_code == 200, reply.text
        pictures = reply.json()["pictures"]
        assert pictures
        with Image.open(io.BytesIO(base64.b64decode(pictures[0]["png_base64"]))) as picture:
            assert picture.mode == "RGB" and min(picture.size) > 8
    assert not any(service.scratch.iterdir()) if service.scratch.exists() else True


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def _good_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


HOSTILE = [
    ("truncated PNG", [("cut.png", _good_png()[:200])], 400, "cut.png"),
    ("PNG declaring 2^30 x 2^30", [("bomb.png", _png_header(2**30, 2**30))], 400, "bomb.png"),
    ("not an image", [("notes.png", b"just some text\n")], 400, "notes.png"),
    ("wrong kind of file", [("notes.txt", b"just some text\n")], 400, "notes.txt"),
    ("too many files", [(f"i{k}.png", _good_png()) for k in range(12)], 422, "12 files"),
    ("too large", [("big.png", b"\0" * 3_000_000)], 413, "limit"),
]


@pytest.mark.parametrize(("what", "uploads", "status", "named"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_upload_gets_its_4xx_json_and_the_next_good_request_is_answered(what, uploads, status, named, tiny):
    good = CASES["mura"](tiny.data("mura"))[0]
    with serving([tiny.run("mura")], max_upload_bytes=2_000_000) as (client, service):
        reply = post(client, uploads)
        assert reply.status_code == status, reply.text
        assert named in reply.json()["error"]
        assert "\n" not in reply.json()["error"] and str(service.scratch) not in reply.json()["error"]
        after = post(client, good)
        assert after.status_code == 200, after.text
        assert list(service.scratch.iterdir()) == []


def test_a_bad_upload_in_a_batch_fails_only_its_own_request(tiny):
    """Requests predicted together: one unreadable upload among them is retried alone, the others answered."""
    import concurrent.futures

    good = CASES["mura"](tiny.data("mura"))[:3]
    with serving([tiny.run("mura")], max_batch=8, max_wait_s=0.5) as (client, service):
        bodies = [*good, [("cut.png", _good_png()[:200])]]
        with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
            replies = list(pool.map(lambda uploads: post(client, uploads), bodies))
        assert [r.status_code for r in replies] == [200, 200, 200, 400]
        assert "cut.png" in replies[-1].json()["error"]
        assert next(iter(service.batchers.values())).stats.largest > 1


REQUEST_ERRORS = [
    ("no files field", lambda c: c.post("/predict", files=[("other", ("a.png", b"x"))]), 422),
    ("not multipart", lambda c: c.post("/predict", content=b"x=1", headers={"content-type": "text/plain"}), 415),
    ("unknown model", lambda c: c.post("/predict", params={"model": "nope"}, files=[("files", ("a.png", b"x"))]), 404),
    ("explain not a boolean", lambda c: c.post("/predict", params={"explain": "maybe"}), 422),
    ("no such endpoint", lambda c: c.get("/nowhere"), 404),
]


@pytest.mark.parametrize(("what", "send", "status"), REQUEST_ERRORS, ids=[e[0] for e in REQUEST_ERRORS])
def test_a_malformed_request_is_a_json_error(what, send, status, tiny):
    with serving([tiny.run("mura")]) as (client, _):
        reply = send(client)
        assert reply.status_code == status
        assert set(reply.json()) == {"error"}


def test_a_hundred_bad_requests_in_a_row_leave_the_service_answering(tiny):
    good = CASES["mura"](tiny.data("mura"))[0]
    with serving([tiny.run("mura")]) as (client, service):
        codes = {post(client, [("x.png", b"garbage %d" % k)]).status_code for k in range(100)}
        assert codes == {400}
        reply = post(client, good)
        assert reply.status_code == 200 and 0.0 <= reply.json()["prediction"]["probability"] <= 1.0
        assert list(service.scratch.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "uploads", "status", "named"),
    [
        ("mrnet", [("a_axial.npy", b"x"), ("b_axial.npy", b"x"), ("c_sagittal.npy", b"x")], 422, "second axial"),
        ("mrnet", [("one.npy", b"x"), ("two_axial.npy", b"x"), ("c_sagittal.npy", b"x")], 422, "one.npy"),
        ("pneumonia", [("chest.dcm", b"DICM but not really")], 400, "chest.dcm"),
        ("ich", [("slice.dcm", b"\0" * 132 + b"DICM" + b"\x02\x00")], 400, "slice.dcm"),
    ],
)
def test_each_task_names_the_bad_file(name, uploads, status, named, tiny):
    with serving([tiny.run(name)]) as (client, _):
        reply = post(client, uploads)
        assert reply.status_code == status, reply.text
        assert named in reply.json()["error"]


def test_with_a_token_a_request_without_it_is_401_and_nothing_is_computed(tiny):
    good = CASES["mura"](tiny.data("mura"))[0]
    with serving([tiny.run("mura")], token="s3cret") as (client, service):
        assert client.get("/health").status_code == 200
        for path in ("/models", "/ready", "/"):
            assert client.get(path).status_code == 401
        reply = post(client, good)
        assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer"
        wrong = client.post("/predict", files=[("files", ("a.png", b"x"))], headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401
        assert next(iter(service.batchers.values())).stats.requests == 0
        files = [("files", (n, p.read_bytes())) for n, p in good]
        assert client.post("/predict", files=files, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_two_models_are_picked_by_name(tiny):
    with serving([tiny.run("mura"), tiny.folds("mura")]) as (client, _):
        names = [m["name"] for m in client.get("/models").json()]
        assert len(names) == 2
        good = CASES["mura"](tiny.data("mura"))[0]
        assert post(client, good).status_code == 422
        for name in names:
            assert post(client, good, model=name).status_code == 200


def test_the_page_is_served_by_the_app_itself(tiny):
    with serving([tiny.run("mura")]) as (client, _):
        page = client.get("/")
        assert page.status_code == 200 and "<script>" in page.text
        assert "http://" not in page.text and "https://" not in page.text  # nothing from outside: works offline
        assert client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]


def test_a_task_from_outside_radlab_is_served_by_its_own_spec(tiny, tmp_path):
    """The toy task (tests/toy, its own package) declares a serve spec and nothing in core/serve knows it."""
    from radlab_toy.toy import read_predictions

    data, run = tiny.data("toy"), tiny.run("toy")
    images = sorted((data / "valid").glob("*.png"))[:3]
    result = run_radlab("toy", "predict", data / "valid", tmp_path / "p.csv", "--model", run, "--workers", "0")
    assert result.returncode == 0, result.stderr
    expected = read_predictions(tmp_path / "p.csv")
    with serving([run]) as (client, _):
        for image in images:
            reply = post(client, [(image.name, image)])
            assert reply.status_code == 200, reply.text
            assert abs(reply.json()["prediction"]["probability"] - expected[image.name]) <= 1e-6


def _referenced(report) -> set[str]:
    """The SOPInstanceUIDs an SR names as its evidence."""
    return {
        str(sop.ReferencedSOPInstanceUID)
        for study in report.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }


def _parts(reply) -> list[bytes]:
    """The bodies of a multipart/related answer."""
    boundary = reply.headers["content-type"].split("boundary=")[1]
    chunks = reply.content.split(f"--{boundary}".encode())[1:-1]
    return [chunk.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n") for chunk in chunks]


@pytest.mark.parametrize("name", ["pneumonia", "ich"])
def test_accept_dicom_returns_a_report_of_the_input_instances(name, tiny):
    import pydicom

    from radlab.core.io.dicom import read_header

    case = CASES[name](tiny.data(name))[0]
    sources = {str(read_header(path).SOPInstanceUID) for _, path in case}
    with serving([tiny.run(name)]) as (client, _):
        files = [("files", (n, p.read_bytes())) for n, p in case]
        reply = client.post("/predict", files=files, headers={"Accept": "application/dicom"})
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"] == "application/dicom"
        report = pydicom.dcmread(io.BytesIO(reply.content))
        assert report.Modality == "SR" and _referenced(report) == sources
        reply = client.post(
            "/predict", files=files, params={"explain": "true"}, headers={"Accept": "application/dicom"}
        )
        assert reply.status_code == 200, reply.text
        parts = [pydicom.dcmread(io.BytesIO(part)) for part in _parts(reply)]
        assert parts[0].Modality == "SR" and len(parts) > 1
        assert all(part.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" for part in parts[1:])  # Secondary Capture


def test_a_task_without_dicom_results_refuses_accept_dicom(tiny):
    good = CASES["mura"](tiny.data("mura"))[0]
    with serving([tiny.run("mura")]) as (client, _):
        files = [("files", (n, p.read_bytes())) for n, p in good]
        reply = client.post("/predict", files=files, headers={"Accept": "application/dicom"})
        assert reply.status_code == 406 and "JSON" in reply.json()["error"]


def test_with_stow_every_dicom_result_is_stored_on_the_dicomweb_server(tiny):
    import os

    import pydicom

    from radlab.core.io.dicomweb import find_instances

    url = os.environ.get("RADLAB_ORTHANC_URL")
    if not url:
        if os.environ.get("RADLAB_ORTHANC_TESTS") == "required":
            pytest.fail("RADLAB_ORTHANC_TESTS=required but RADLAB_ORTHANC_URL is unset (source .ci/orthanc.sh)")
        pytest.skip("no Orthanc: source .ci/orthanc.sh to run the DICOMweb tests")
    case = CASES["pneumonia"](tiny.data("pneumonia"))[1]
    service = Service(plan_models([tiny.run("pneumonia")], "torch"), new_scratch(), device="cpu", stow=url)
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 120
        while client.get("/ready").status_code != 200:
            assert service.load_error is None and time.monotonic() < deadline
            time.sleep(0.05)
        files = [("files", (n, p.read_bytes())) for n, p in case]
        reply = client.post("/predict", files=files, headers={"Accept": "application/dicom"})
        assert reply.status_code == 200, reply.text
    report = pydicom.dcmread(io.BytesIO(reply.content))
    found = find_instances(url, SOPInstanceUID=str(report.SOPInstanceUID))
    assert len(found) == 1


def test_a_dicomweb_server_that_cannot_be_reached_is_a_502_not_the_clients_fault(tiny):
    case = CASES["pneumonia"](tiny.data("pneumonia"))[0]
    service = Service(
        plan_models([tiny.run("pneumonia")], "torch"), new_scratch(), device="cpu", stow="http://127.0.0.1:9/dicom-web"
    )
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 120
        while client.get("/ready").status_code != 200:
            assert service.load_error is None and time.monotonic() < deadline
            time.sleep(0.05)
        reply = client.post("/predict", files=[("files", (n, p.read_bytes())) for n, p in case])
        assert reply.status_code == 502 and "127.0.0.1:9" in reply.json()["error"]
