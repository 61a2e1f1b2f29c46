"""`radlab serve` for MRNet: the three `.npy` series of one exam per request, the plane read from each file's
name; a batch of requests is one exam-paths CSV through `predict_csv` (fusion and all), so the service and
`radlab mrnet predict` agree exactly."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radlab.core.serve.spec import (
    FileRule,
    RequestShapeError,
    ServedRun,
    ServeRequest,
    ServeSpec,
    StagedFile,
    link,
    uncached,
)
from radlab.tasks.mrnet import TASKS
from radlab.tasks.mrnet.formats import PLANES, plane_of, read_predictions
from radlab.tasks.mrnet.predict import predict_csv


def check(files: Sequence[StagedFile]) -> None:
    """One series per plane, each plane named in its file's name."""
    seen: dict[str, str] = {}
    for staged in files:
        plane = plane_of(staged.name)
        if plane is None:
            raise RequestShapeError(f"{staged.name}: its name must say its plane (one of {', '.join(PLANES)})")
        if plane in seen:
            raise RequestShapeError(f"{staged.name}: a second {plane} series (the first is {seen[plane]})")
        seen[plane] = staged.name


def predict(run: ServedRun, requests: Sequence[ServeRequest], scratch: Path) -> list[dict[str, Any]]:
    """Each request's fused probabilities of abnormal, ACL tear and meniscal tear."""
    rows = []
    for request in requests:
        for staged in request.files:
            plane = plane_of(staged.name)
            rows.append(link(staged.path, scratch / request.key / f"{plane}.npy").relative_to(scratch).as_posix())
    paths_csv, out_csv = scratch / "exams.csv", scratch / "predictions.csv"
    paths_csv.write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")
    loaded = [dataclasses.replace(member, config=uncached(member.config)) for member in run.loaded]
    predict_csv(
        paths_csv,
        out_csv,
        list(run.members),
        data_root=scratch,
        loaded=loaded,
        strict=True,
        num_workers=0,
        device=run.device,
        engine=run.engine,
    )
    probabilities = read_predictions(out_csv)
    return [dict(zip(TASKS, map(float, row), strict=True)) for row in probabilities]


SERVE = ServeSpec(
    files=FileRule("the axial, coronal and sagittal .npy series of one exam", 3, 3, (".npy",)),
    predict=predict,
    check=check,
)
