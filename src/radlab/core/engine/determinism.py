"""`train.deterministic: true` for a whole training: PyTorch's deterministic algorithms, cuDNN without
benchmarking, cuBLAS's fixed workspace, and every Trainer of the run (ICH's sequence stage too, whose
section has a `deterministic` of its own) built deterministic; two runs with one seed on one machine then
write the same history and weights."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from radlab.core.errors import RadlabConfigError

CUBLAS_WORKSPACE = ":4096:8"
"""What cuBLAS needs to be deterministic (set before CUDA starts, unless the user set it already)."""

_DETERMINISTIC: ContextVar[bool] = ContextVar("radlab_deterministic", default=False)


def deterministic(engine_flag: bool) -> bool:
    """What a Trainer's `deterministic` is: its own section's flag, or the run's `train.deterministic`."""
    return engine_flag or _DETERMINISTIC.get()


@contextmanager
def deterministic_run(on: bool) -> Iterator[None]:
    """Inside: deterministic algorithms when `on` (restored after). An operation with no deterministic
    implementation on this device is one line saying so, not a traceback."""
    if not on:
        yield
        return
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)  # kept after: Lightning sets it too
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    token = _DETERMINISTIC.set(True)
    try:
        yield
    except RuntimeError as error:
        if "deterministic" not in str(error):
            raise
        first = str(error).strip().splitlines()[0]
        raise RadlabConfigError(f"train.deterministic=true: {first}; train with train.deterministic=false") from None
    finally:
        _DETERMINISTIC.reset(token)
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]
