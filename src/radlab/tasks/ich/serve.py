"""`radlab serve` for RSNA ICH: the DICOM slices of one or more series per request. Requests whose series
are disjoint share one folder through `predict_folder` (two requests holding the same series are predicted
apart, so a series is never doubled); the service and `radlab ich predict` agree exactly. DICOM results: a
Structured Report of the six probabilities per slice."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radlab.core.errors import RadlabDataError
from radlab.core.io.dicom import header_value, read_header
from radlab.core.serve.spec import FileRule, ServedRun, ServeRequest, ServeSpec, link, uncached
from radlab.tasks.ich.formats import SUBTYPES, read_submission
from radlab.tasks.ich.predict import LoadedRun, predict_folder

SERIES_KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")


def _headers(request: ServeRequest) -> list[Any] | None:
    """Each slice's header, read once; None when one does not read (the request is then predicted alone, where
    the reader names the file)."""
    try:
        return [read_header(staged.path) for staged in request.files]
    except RadlabDataError:
        return None


def _groups(requests: Sequence[ServeRequest], headers: dict[str, list[Any] | None]) -> list[list[ServeRequest]]:
    """Requests in groups, in order, whose (patient, study, series) do not overlap; an unreadable one alone."""
    groups: list[tuple[list[ServeRequest], set[tuple[str, ...]] | None]] = []
    for request in requests:
        found = headers[request.key]
        keys = None if found is None else {tuple(str(header_value(h, k, "")) for k in SERIES_KEYS) for h in found}
        home = None if keys is None else next((g for g in groups if g[1] is not None and not g[1] & keys), None)
        if home is None:
            groups.append(([request], keys))
        else:
            home[0].append(request)
            home[1].update(keys or set())  # type: ignore[union-attr]  # a readable group holds a set
    return [group for group, _ in groups]


def predict(run: ServedRun, requests: Sequence[ServeRequest], scratch: Path) -> list[dict[str, Any]]:
    """Each request's slices with their six probabilities, by SOPInstanceUID."""
    loaded = [LoadedRun(uncached(m.config), m.model, m.snapshots, m.embedder) for m in run.loaded]
    answers: dict[str, dict[str, Any]] = {}
    headers = {request.key: _headers(request) for request in requests}
    for k, group in enumerate(_groups(requests, headers)):
        folder = scratch / f"group{k}"
        image_of: dict[str, tuple[ServeRequest, int]] = {}
        for request in group:
            for i, staged in enumerate(request.files):
                image = f"ID_{request.key}_{Path(staged.name).stem}"
                link(staged.path, folder / f"{image}.dcm")
                image_of[image] = (request, i)
        out_csv = scratch / f"group{k}.csv"
        predict_folder(
            folder,
            out_csv,
            list(run.members),
            loaded=loaded,
            strict=True,
            num_workers=0,
            device=run.device,
            engine=run.engine,
        )
        ids, probs = read_submission(out_csv)
        rows: dict[str, list[dict[str, Any]]] = {request.key: [] for request in group}
        for image, row in zip(ids, probs.tolist(), strict=True):
            request, i = image_of[image]
            staged = request.files[i]
            found = headers[request.key]
            uid = str(header_value(found[i], "SOPInstanceUID", "")) if found else ""
            labels = dict(zip(SUBTYPES, row, strict=True))
            rows[request.key].append({"sop_instance_uid": uid, "name": staged.name, **labels})
        answers.update({key: {"images": images} for key, images in rows.items()})
    return [answers[request.key] for request in requests]


def dicom(sources: Sequence[Path], prediction: dict[str, Any], pictures: Sequence[Any] = ()) -> list[Any]:
    from radlab.tasks.ich.dicom_results import dicom_results

    return dicom_results(sources, prediction, pictures)


SERVE = ServeSpec(
    files=FileRule("the DICOM slices of one or more series", 1, None, None, ".dcm"),
    predict=predict,
    dicom=dicom,
)
