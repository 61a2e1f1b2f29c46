"""What `radlab tune mura` optimises: the validation kappa (pruned on its per-epoch value)."""

from __future__ import annotations

from radlab.core.tune.study import Objective, TaskTuning
from radlab.tasks.mura.config import load_mura_config
from radlab.tasks.mura.train import held_out_scores, train


def tuning() -> TaskTuning:
    return TaskTuning(
        "mura",
        train,
        load_mura_config,
        Objective("kappa", "maximize", "val/kappa", lambda metrics: held_out_scores(metrics)["kappa"]),
    )
