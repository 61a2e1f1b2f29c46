"""The machine and software a training runs on: versions, devices, instruction sets, threads."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from radlab.core.provenance.revision import code_revision

PACKAGES = (
    "torch",
    "torchvision",
    "lightning",
    "timm",
    "numpy",
    "onnx",
    "onnxruntime",
    "albumentations",
    "opencv-python-headless",
    "pydicom",
    "safetensors",
)
"""The libraries whose versions change what a training computes."""

INSTRUCTION_SETS = (
    "sse", "ssse", "avx", "fma", "f16c", "amx", "bmi", "popcnt", "aes", "sha", "vnni", "asimd", "sve", "fphp",
)  # fmt: skip
"""Prefixes of the /proc/cpuinfo flags that name vector and arithmetic instruction sets."""

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "CUBLAS_WORKSPACE_CONFIG",
    "PYTHONHASHSEED",
)


def describe_environment() -> dict[str, Any]:
    """Everything environment.json records of the software and the machine."""
    return {
        "radlab": code_revision(),
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "executable": sys.executable,
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine()},
        "packages": _versions(PACKAGES),
        "torch": _torch(),
        "cpu": _cpu(),
        "devices": _devices(),
        "variables": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
    }


def _versions(names: tuple[str, ...]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _torch() -> dict[str, Any]:
    import torch

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }


def _cpu() -> dict[str, Any]:
    model, flags = _cpuinfo(Path("/proc/cpuinfo"))
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "model": model or platform.processor() or None,
        "count": os.cpu_count(),
        "usable": usable,
        "instruction_sets": sorted(f for f in flags if f.startswith(INSTRUCTION_SETS)),
    }


def _cpuinfo(path: Path) -> tuple[str | None, set[str]]:
    """(the model name, the flags) of the first processor in /proc/cpuinfo; (None, {}) where there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, set()
    model: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def _devices() -> list[dict[str, Any]]:
    """The accelerators torch sees (CUDA with name, capability and memory; Apple's MPS)."""
    import torch

    devices: list[dict[str, Any]] = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            devices.append(
                {
                    "type": "cuda",
                    "index": index,
                    "name": properties.name,
                    "capability": f"{properties.major}.{properties.minor}",
                    "memory_gib": round(properties.total_memory / 2**30, 2),
                }
            )
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append({"type": "mps", "index": 0, "name": "Apple MPS"})
    return devices
