"""`train.deterministic=true` (issue 18, item 4): two CPU trainings with one seed write the same history
(all but its wall-clock `seconds` column) and bit-identical weights."""

from __future__ import annotations

import json

import pytest

from radlab.core.engine.callbacks import read_history
from radlab.core.engine.determinism import deterministic, deterministic_run
from radlab.core.errors import RadlabConfigError
from tests.conftest import TINY


@pytest.mark.parametrize("name", ["toy", "mura"])
def test_two_deterministic_runs_with_one_seed_write_the_same_history_and_weights(name, tiny, tmp_path, one_thread):
    import torch

    from radlab.core.engine.driver import train
    from radlab.core.task import get_task

    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        train(get_task(name), tiny.data(name), run, "cpu-small", [*TINY[name].train, "train.deterministic=true"])
        assert not torch.are_deterministic_algorithms_enabled()  # switched on for the training only
    a, b = (read_history(run / "history.csv") for run in runs)
    assert len(a) == len(b) > 0 and "seconds" in a[0]
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in a] == [
        {k: v for k, v in row.items() if k != "seconds"} for row in b
    ]
    (first, meta), (second, meta_again) = (_weights(run / "model.safetensors") for run in runs)
    assert meta == meta_again and list(first) == list(second)
    assert all(torch.equal(first[key], second[key]) for key in first)  # bit for bit
    record = json.loads((runs[0] / "environment.json").read_text())
    assert record["deterministic"] is True and record["torch"]["deterministic_algorithms"] is True


def _weights(path):
    """(tensors, metadata) of a weights file; its bytes may differ where they are equal: safetensors writes its
    metadata in a hash map's order."""
    from radlab.core.models import load_weights
    from radlab.core.models.weights import read_metadata

    return load_weights(path), read_metadata(path)


def test_the_runs_flag_reaches_every_trainer_of_it():
    assert (deterministic(False), deterministic(True)) == (False, True)
    with deterministic_run(True):
        assert deterministic(False) is True  # ICH's sequence section has a flag of its own
    assert deterministic(False) is False


@pytest.mark.parametrize(
    ("error", "becomes"),
    [
        (RuntimeError("upsample_bilinear2d_backward_out_cuda does not have a deterministic implementation"), True),
        (RuntimeError("CUDA out of memory"), False),
    ],
)
def test_an_operation_without_a_deterministic_implementation_is_one_line(error, becomes):
    with pytest.raises(RadlabConfigError if becomes else RuntimeError) as raised, deterministic_run(True):
        raise error
    if becomes:
        assert str(raised.value) == f"train.deterministic=true: {error}; train with train.deterministic=false"
