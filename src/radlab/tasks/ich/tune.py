"""What `radlab tune ich` optimises: the sequence model's weighted log loss on the held-out fold (pruned on
the slice classifier's per-epoch value, the stage that takes the time)."""

from __future__ import annotations

from radlab.core.tune.study import Objective, TaskTuning
from radlab.tasks.ich.config import load_ich_config
from radlab.tasks.ich.train import held_out_scores, train


def tuning() -> TaskTuning:
    return TaskTuning(
        "ich",
        train,
        load_ich_config,
        Objective("weighted_log_loss", "minimize", "val/weighted_log_loss", lambda m: held_out_scores(m)["sequence"]),
    )
