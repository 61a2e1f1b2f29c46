import math
import pickle

import pytest
import safetensors
import torch

from radlab.core.engine.checkpoint_io import (
    SafetensorsCheckpointIO,
    decode_checkpoint,
    encode_checkpoint,
    load_checkpoint_file,
    save_checkpoint_file,
)
from radlab.core.errors import RadlabDataError


def _lightning_like() -> dict:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    return {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": model.state_dict(),
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [scheduler.state_dict()],
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val/kappa'}": {
                "best_model_score": torch.tensor(0.7),
                "best_k_models": {"/x/best.ckpt": torch.tensor(0.7)},
            }
        },
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 4}, "current": {"ready": 4}}, "flag": True}},
        "weird": {(1, 2): None, 5: [float("inf"), float("-inf"), (1.5, "x")], "__tensor__": "literal"},
    }


def _assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, float) and math.isinf(a):
        assert a == b
    else:
        assert a == b and type(a) is type(b)


def test_encode_decode_round_trip():
    checkpoint = _lightning_like()
    skeleton, tensors = encode_checkpoint(checkpoint)
    _assert_same(checkpoint, decode_checkpoint(skeleton, tensors))


def test_file_round_trip_is_plain_safetensors(tmp_path):
    path = tmp_path / "last.safetensors"
    checkpoint = _lightning_like()
    SafetensorsCheckpointIO().save_checkpoint(checkpoint, path)
    with safetensors.safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()["format"] == "radlab-checkpoint/1"
    _assert_same(checkpoint, SafetensorsCheckpointIO().load_checkpoint(path))
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]


def test_unsupported_values_are_named():
    with pytest.raises(TypeError, match=r"checkpoint\.callbacks\.x"):
        encode_checkpoint({"callbacks": {"x": object()}})


class _Payload:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(_Payload.marker),))


def test_a_pickle_posing_as_a_checkpoint_is_never_executed(tmp_path):
    _Payload.marker = str(tmp_path / "pwned")
    path = tmp_path / "last.safetensors"
    path.write_bytes(pickle.dumps({"state_dict": _Payload()}))
    with pytest.raises(RadlabDataError, match="unreadable training checkpoint"):
        load_checkpoint_file(path)
    assert not (tmp_path / "pwned").exists()


def test_foreign_safetensors_is_not_a_checkpoint(tmp_path):
    import safetensors.torch

    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(RadlabDataError, match="not a radlab training checkpoint"):
        load_checkpoint_file(path)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    save_checkpoint_file({"epoch": 1}, path)

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", explode)
    with pytest.raises(OSError):
        save_checkpoint_file({"epoch": 2}, path)
    assert load_checkpoint_file(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]
