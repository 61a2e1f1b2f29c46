"""Hyper-parameter search through Optuna (`radlab tune`): a search space declared in the preset (space.py),
per-epoch pruning (pruning.py), many workers sharing one study through a database (study.py)."""

from radlab.core.tune.space import ParamSpec, TuneConfig

__all__ = ["ParamSpec", "TuneConfig"]
