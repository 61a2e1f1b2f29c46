"""What `radlab tune mrnet` optimises: the valid split's Average_AUROC after fusion (pruned on the units'
per-epoch validation AUROC)."""

from __future__ import annotations

from radlab.core.tune.study import Objective, TaskTuning
from radlab.tasks.mrnet.config import load_mrnet_config
from radlab.tasks.mrnet.train import held_out_scores, train


def tuning() -> TaskTuning:
    return TaskTuning(
        "mrnet",
        train,
        load_mrnet_config,
        Objective("Average_AUROC", "maximize", "val/auroc", lambda m: held_out_scores(m)["Average_AUROC"]),
    )
