"""Store DICOM results on a DICOMweb server (STOW-RS) and find them again (QIDO-RS), with dicomweb-client.

A server that refuses the request, or cannot be reached, is one RadlabError naming the URL (and the HTTP
status), never a traceback: the predictions are written already, only the upload failed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from radlab.core.errors import RadlabError
from radlab.core.io.dicom_results import quiet_pydicom, write_datasets

TIMEOUT_S = 60.0
RETRIES = 3
TOKEN_VARIABLE = "RADLAB_DICOMWEB_TOKEN"
"""The environment variable whose value, when set, `deliver` sends as a bearer token."""


def client(url: str, token: str | None = None) -> DICOMwebClient:
    """A client of the DICOMweb root `url` (`http://host:port/dicom-web`), with a bearer token if given.
    Permissive about UIDs: the challenges' own (`ID_63eb1e259`) are not of the standard's form. A failed
    request is tried RETRIES times in all, a fraction of a second apart (dicomweb-client's default, five
    tries seconds apart, keeps a command waiting half a minute on a server that is down)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    web = DICOMwebClient(url, headers=headers, permissive_uid=True, timeout=TIMEOUT_S)
    web.set_http_retry_params(max_attempts=RETRIES, wait_exponential_multiplier=100)
    return web


def stow(url: str, datasets: Sequence[Dataset], *, token: str | None = None) -> None:
    """Store `datasets` on the DICOMweb server at `url` (one STOW-RS request per study, as the standard
    wants one study per request); every instance must be accepted."""
    by_study: dict[str, list[Dataset]] = {}
    for ds in datasets:
        by_study.setdefault(str(ds.StudyInstanceUID), []).append(ds)
    web = client(url, token)
    for study, members in by_study.items():
        with _answered(url, "STOW-RS"), quiet_pydicom():
            answer = web.store_instances(members, study_instance_uid=study)
        failed = answer.get("FailedSOPSequence") if answer is not None else None
        if failed:
            reasons = sorted({str(item.get("FailureReason", "?")) for item in failed})
            raise RadlabError(f"{url}: refused {len(failed)} of {len(members)} instances (reason {', '.join(reasons)})")


def find_instances(url: str, *, token: str | None = None, **filters: str) -> list[dict[str, Any]]:
    """QIDO-RS: the instances matching `filters` (keywords such as SOPInstanceUID), in DICOM JSON."""
    with _answered(url, "QIDO-RS"):
        found: list[dict[str, Any]] = client(url, token).search_for_instances(search_filters=filters)
    return found


def fetch_instance(url: str, study: str, series: str, instance: str, *, token: str | None = None) -> Dataset:
    """WADO-RS: one stored instance as a pydicom Dataset."""
    with _answered(url, "WADO-RS"), quiet_pydicom():
        ds: Dataset = client(url, token).retrieve_instance(study, series, instance)
    return ds


@contextmanager
def _answered(url: str, what: str) -> Iterator[None]:
    """Turns a refusal (an HTTP error status) or an unreachable server into one RadlabError naming `url`."""
    try:
        yield
    except requests.HTTPError as error:
        answer = error.response
        status = (
            f"HTTP {answer.status_code}{' ' + answer.reason if answer.reason else ''}"
            if answer is not None
            else "no answer"
        )
        raise RadlabError(f"{url}: {what} refused ({status})") from None
    except requests.RequestException as error:
        raise RadlabError(f"{url}: {what} failed, server unreachable ({type(error).__name__})") from None


def deliver(datasets: Sequence[Dataset], folder: str | Path | None, url: str | None) -> str:
    """Write `datasets` into `folder` and/or store them at `url` (the token in RADLAB_DICOMWEB_TOKEN, if
    set); the words saying where they went, for predict's line."""
    said = []
    if folder is not None:
        write_datasets(folder, datasets)
        said.append(f"{len(datasets)} DICOM results -> {folder}")
    if url is not None:
        stow(url, datasets, token=os.environ.get(TOKEN_VARIABLE) or None)
        said.append(f"{len(datasets)} stored on {url}")
    return "; ".join(said)
