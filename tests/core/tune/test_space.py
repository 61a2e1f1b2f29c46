import optuna
import pytest
from pydantic import ValidationError

from radlab.core.tune.space import ParamSpec, TuneConfig


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "low": 1.0, "high": 1.0}, "low < high"),
        ({"type": "int", "low": 3}, "low < high"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "low > 0"),
        ({"type": "categorical"}, "choices"),
        ({"type": "categorical", "choices": []}, "choices"),
        ({"type": "float", "low": 0.0, "high": 1.0, "spread": 2}, "Extra inputs"),
        ({"type": "normal", "low": 0.0, "high": 1.0}, "Input should be"),
    ],
)
def test_an_incomplete_range_is_refused(spec, message):
    with pytest.raises(ValidationError, match=message):
        ParamSpec(**spec)


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ({"type": "float", "low": 1e-5, "high": 1e-2, "log": True}, 1e-3),
        ({"type": "int", "low": 8, "high": 64, "step": 8}, 24),
        ({"type": "categorical", "choices": ["densenet121", "resnet50"]}, "resnet50"),
    ],
)
def test_suggest_draws_through_the_trial(spec, value):
    param = ParamSpec(**spec)
    assert param.suggest(optuna.trial.FixedTrial({"key": value}), "key") == value


def test_corners_are_the_range_ends_or_every_choice():
    assert ParamSpec(type="float", low=0.0, high=2.0).corners() == [0.0, 2.0]
    assert ParamSpec(type="categorical", choices=["a", "b"]).corners() == ["a", "b"]


def test_every_task_preset_declares_a_space_its_config_accepts():
    from radlab.core.task import tasks

    for task in tasks():
        for preset in ("paper", "cpu-small"):
            tune = task.load_config(preset, []).tune
            assert isinstance(tune, TuneConfig) and tune.space, (task.name, preset)
            for key, param in tune.space.items():
                for value in param.corners():
                    task.load_config(preset, [f"{key}={value}"])
