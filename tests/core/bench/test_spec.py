"""`bench infer|train --device`: where PyTorch runs on both sides, chosen or refused in one line."""

from __future__ import annotations

import pytest
import torch

from radlab.core.bench.spec import bench_device, bench_infer
from radlab.core.errors import RadlabConfigError, RadlabError
from radlab.core.task import get_task


@pytest.mark.parametrize(
    ("device", "cuda", "expected"),
    [
        ("cpu", False, "cpu"),
        ("cpu", True, "cpu"),
        ("auto", False, "cpu"),
        ("auto", True, "cuda"),
        ("cuda", True, "cuda"),
    ],
)
def test_the_device_is_the_one_asked_for_and_auto_takes_a_gpu_when_there_is_one(monkeypatch, device, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert bench_device(device) == expected


@pytest.mark.parametrize(
    ("device", "error", "message"),
    [
        ("gpu0", RadlabConfigError, "--device 'gpu0': choose cpu, cuda or auto"),
        ("cuda", RadlabError, "--device cuda: PyTorch sees no CUDA device on this machine"),
    ],
)
def test_bench_infer_refuses_a_device_it_cannot_use_before_writing_anything(monkeypatch, device, error, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(error) as raised:
        bench_infer(get_task("toy"), device=device)
    assert str(raised.value) == message
