"""`radlab serve` for RSNA Pneumonia: one chest X-ray DICOM per request; a batch of requests is one folder
through `predict_folder`, so the service and `radlab pneumonia predict` agree exactly. DICOM results: a
Structured Report of the boxes (and Secondary Captures of the pictures)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radlab.core.serve.spec import FileRule, ServedRun, ServeRequest, ServeSpec, link, uncached
from radlab.tasks.pneumonia.formats import format_prediction_string, read_submission
from radlab.tasks.pneumonia.predict import predict_folder

BOX_KEYS = ("confidence", "x", "y", "width", "height")


def predict(run: ServedRun, requests: Sequence[ServeRequest], scratch: Path) -> list[dict[str, Any]]:
    """Each request's boxes (highest confidence first) and its submission PredictionString."""
    images = scratch / "images"
    for request in requests:
        link(request.files[0].path, images / f"{request.key}.dcm")
    out_csv = scratch / "submission.csv"
    predict_folder(
        images,
        out_csv,
        list(run.members),
        loaded=[(uncached(config), model) for config, model in run.loaded],
        strict=True,
        num_workers=0,
        device=run.device,
        engine=run.engine,
    )
    rows = read_submission(out_csv)
    answers = []
    for request in requests:
        found = rows[request.key]
        order = sorted(range(len(found.scores)), key=lambda i: -found.scores[i])
        boxes = [dict(zip(BOX_KEYS, map(float, (found.scores[i], *found.boxes[i])), strict=True)) for i in order]
        answers.append({"boxes": boxes, "prediction_string": format_prediction_string(found.boxes, found.scores)})
    return answers


def dicom(sources: Sequence[Path], prediction: dict[str, Any], pictures: Sequence[Any] = ()) -> list[Any]:
    from radlab.tasks.pneumonia.dicom_results import dicom_results

    return dicom_results(sources, prediction, pictures)


SERVE = ServeSpec(
    files=FileRule("one chest X-ray DICOM", 1, 1, None, ".dcm"),
    predict=predict,
    dicom=dicom,
)
