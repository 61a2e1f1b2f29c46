"""What `radlab tune pneumonia` optimises: the held-out fold's mAP at its best score threshold."""

from __future__ import annotations

from radlab.core.tune.study import Objective, TaskTuning
from radlab.tasks.pneumonia.config import load_pneumonia_config
from radlab.tasks.pneumonia.train import held_out_scores, train


def tuning() -> TaskTuning:
    return TaskTuning(
        "pneumonia",
        train,
        load_pneumonia_config,
        Objective("mAP", "maximize", "val/map", lambda metrics: held_out_scores(metrics)["mAP"]),
    )
