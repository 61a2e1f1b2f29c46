from pathlib import Path

import pytest

from radlab.core.config import deep_merge, parse_overrides
from radlab.core.errors import RadlabConfigError
from radlab.core.task import get_task
from radlab.tasks.mura import MuraConfig


def load_mura_config(name_or_path=None, overrides=()):
    return get_task("mura").load_config(name_or_path, overrides)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["train.lr=1e-3"], {"train": {"lr": 1e-3}}),
        (["a.b.c=true", "a.d=x"], {"a": {"b": {"c": True}, "d": "x"}}),
        (["data.mean=[0.1, 0.2, 0.3]"], {"data": {"mean": [0.1, 0.2, 0.3]}}),
        (["model.weights_file="], {"model": {"weights_file": None}}),
        (["model.weights_file=null"], {"model": {"weights_file": None}}),
        (["optim.lr=1e-5", "train.max_epochs=3"], {"optim": {"lr": 1e-5}, "train": {"max_epochs": 3}}),
        (["model.backbone=resnet18"], {"model": {"backbone": "resnet18"}}),
    ],
)
def test_parse_overrides(items, expected):
    assert parse_overrides(items) == expected


@pytest.mark.parametrize("item", ["noequals", "=3", "a..b=1"])
def test_malformed_overrides(item):
    with pytest.raises(RadlabConfigError, match="--set"):
        parse_overrides([item])


def test_deep_merge_keeps_siblings():
    assert deep_merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}}) == {"a": {"x": 1, "y": 3}, "b": 1}


@pytest.mark.parametrize("name", ["paper", "cpu-small"])
def test_presets_validate(name):
    assert isinstance(load_mura_config(name), MuraConfig)


def test_paper_preset_is_the_published_recipe():
    config = load_mura_config("paper")
    assert config.model.backbone == "densenet169" and config.model.pretrained
    assert config.data.image_size == 320 and config.data.resize == "stretch"
    assert config.data.mean == (0.485, 0.456, 0.406) and config.data.std == (0.229, 0.224, 0.225)
    assert config.augment.hflip == 0.5 and config.augment.rotate_deg == 30
    assert config.optim.lr == 1e-4 and config.optim.betas == (0.9, 0.999) and config.optim.plateau_factor == 0.1
    assert config.train.batch_size == 8 and config.train.loss_weighting == "per_type"
    assert config.predict.pooling == "mean" and config.predict.threshold == 0.5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.lrr=1"], "unknown key 'train.lrr'"),
        (["nonsense.x=1"], "unknown key 'nonsense'"),
        (["train.batch_size=abc"], "train.batch_size"),
        (["augment.hflip=2"], "augment.hflip"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(RadlabConfigError, match=message) as caught:
        load_mura_config("paper", overrides)
    assert caught.value.exit_code == 2


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(RadlabConfigError, match="cpu-small, paper"):
        load_mura_config("nope")


def test_yaml_file_merges_over_its_base(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: cpu-small\ntrain:\n  max_epochs: 3\n")
    config = load_mura_config(str(path), ["optim.lr=0.01"])
    assert config.train.max_epochs == 3 and config.optim.lr == 0.01
    assert config.model.backbone == load_mura_config("cpu-small").model.backbone


def test_unknown_key_in_yaml_file(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  backbon: resnet18\n")
    with pytest.raises(RadlabConfigError, match=r"unknown key 'model\.backbon'"):
        load_mura_config(str(path))


BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 10)}]\n" for k in range(1, 9)
)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (BOMB + "model:\n  backbone: *a8\n", "file"),  # finding 22: 73 s, then a MemoryError traceback
        ("base: cpu-small\nx: &one 3\ntrain:\n  max_epochs: *one\n", "file"),
    ],
)
def test_yaml_aliases_are_refused_at_once(tmp_path: Path, text, where):
    import time

    path = tmp_path / "mine.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(RadlabConfigError, match="aliases"):
        load_mura_config(str(path))
    assert time.monotonic() - started < 5


def test_an_alias_in_a_set_value_is_kept_as_text_not_expanded():
    from radlab.core.config import parse_value

    assert parse_value("[*a, *a]") == "[*a, *a]"


def test_a_huge_bad_value_is_reported_in_one_short_line():
    with pytest.raises(RadlabConfigError) as caught:
        load_mura_config("cpu-small", ["model.backbone=[" + ", ".join(["1"] * 100_000) + "]"])
    assert "model.backbone" in str(caught.value) and len(str(caught.value)) < 400
