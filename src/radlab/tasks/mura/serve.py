"""`radlab serve` for MURA: the images of one study per request; a batch of requests is one image-paths CSV
through `predict_csv` (one study per request), so the service and `radlab mura predict` agree exactly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radlab.core.serve.spec import FileRule, ServedRun, ServeRequest, ServeSpec, uncached
from radlab.tasks.mura.formats import read_predictions, read_probabilities
from radlab.tasks.mura.predict import combine_members, predict_csv
from radlab.tasks.mura.views import IMAGE_SUFFIXES


def predict(run: ServedRun, requests: Sequence[ServeRequest], scratch: Path) -> list[dict[str, Any]]:
    """Each request's study probability and label, and each image's probability."""
    root = requests[0].folder.parent
    paths_csv, labels_csv, probs_csv = (scratch / name for name in ("images.csv", "labels.csv", "probs.csv"))
    rows = [staged.path.relative_to(root).as_posix() for request in requests for staged in request.files]
    paths_csv.write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")
    config, model = combine_members(run.members, run.loaded)
    summary = predict_csv(
        paths_csv,
        labels_csv,
        list(run.members),
        data_root=root,
        loaded=(uncached(config), model),
        probabilities_csv=probs_csv,
        strict=True,
        num_workers=0,
        device=run.device,
        engine=run.engine,
    )
    labels = {row.study: row.label for row in read_predictions(labels_csv)}
    probabilities = {row.study: row.probability for row in read_probabilities(probs_csv)}
    image_probabilities = iter(summary.image_probabilities.tolist())
    answers = []
    for request in requests:
        study = f"{request.key}/"
        images = [{"name": staged.name, "probability": next(image_probabilities)} for staged in request.files]
        answers.append({"probability": probabilities[study], "label": labels[study], "images": images})
    return answers


SERVE = ServeSpec(
    files=FileRule("the PNG or JPEG images of one study", 1, 11, IMAGE_SUFFIXES),
    predict=predict,
)
