"""Shared fixtures: tiny synthetic data sets and a tiny trained run, made once per test session."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist every worker gets one compute thread: two workers each starting two threads on two
    cores oversubscribe them and slow training tests several-fold. Subprocesses inherit the setting."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture()
def one_thread():
    """Training tests run with one compute thread: the numbers then do not depend on how pytest is invoked
    (floating-point reduction order changes with the thread count, and small trainings notice)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY_TRAIN = (
    "model.backbone=test_resnet",
    "data.image_size=32",
    "data.num_workers=0",
    "train.max_epochs=2",
    "train.batch_size=16",
    "train.progress=quiet",
)


@pytest.fixture(scope="session")
def tiny_mura(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-study synthetic MURA-v1.1 tree (parent folder returned)."""
    from radlab.tasks.mura.synth import synthesize_mura

    root = tmp_path_factory.mktemp("mura")
    synthesize_mura(root, studies=40, seed=7, workers=1)
    return root


@pytest.fixture(scope="session")
def tiny_run(tiny_mura: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished (2-epoch, 32 px) MURA run directory trained on `tiny_mura`."""
    from radlab.tasks.mura.train import train

    run = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_mura, run, "cpu-small", list(TINY_TRAIN))
    return run


def csv_rows(path: Path) -> list[list[str]]:
    """All rows of a CSV file."""
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `python -m radlab ARGS` in a subprocess: real exit codes, real stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "radlab", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


TINY_MRNET_TRAIN = (
    "data.image_size=32",
    "data.num_workers=0",
    "predict.num_workers=0",
    "train.max_epochs=1",
    "train.progress=quiet",
)


@pytest.fixture(scope="session")
def tiny_mrnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16-exam synthetic MRNet-v1.0 tree (parent folder returned)."""
    from radlab.tasks.mrnet.synth import synthesize_mrnet

    root = tmp_path_factory.mktemp("mrnet")
    synthesize_mrnet(root, exams=16, seed=5, workers=1)
    return root


@pytest.fixture(scope="session")
def tiny_mrnet_run(tiny_mrnet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch cpu-small MRNet run (three per-plane networks and the fusion)."""
    from radlab.tasks.mrnet.train import train

    run = tmp_path_factory.mktemp("mrnet-runs") / "tiny"
    train(tiny_mrnet, run, "cpu-small", list(TINY_MRNET_TRAIN))
    return run


TINY_PNEUMONIA_TRAIN = (
    "data.image_size=128",
    "data.num_workers=0",
    "predict.num_workers=0",
    "train.max_epochs=1",
    "train.batch_size=4",
    "train.progress=quiet",
)


@pytest.fixture(scope="session")
def tiny_pneumonia(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 synthetic patients at 128 px (train folder, test folder, label CSVs)."""
    from radlab.tasks.pneumonia.synth import synthesize_pneumonia

    root = tmp_path_factory.mktemp("pneumonia")
    synthesize_pneumonia(root, patients=24, seed=3, size=128, workers=1)
    return root


@pytest.fixture(scope="session")
def tiny_pneumonia_run(tiny_pneumonia: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch cpu-small detector run on `tiny_pneumonia`."""
    from radlab.tasks.pneumonia.train import train

    run = tmp_path_factory.mktemp("pneumonia-runs") / "tiny"
    train(tiny_pneumonia, run, "cpu-small", list(TINY_PNEUMONIA_TRAIN))
    return run


TINY_ICH_TRAIN = (
    "data.image_size=64",
    "data.num_workers=0",
    "predict.num_workers=0",
    "train.max_epochs=1",
    "train.progress=quiet",
    "sequence.max_epochs=2",
    "sequence.keep_epochs=2",
    "sequence.progress=quiet",
)


@pytest.fixture(scope="session")
def tiny_ich(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 synthetic CT series at 64 px (train and test folders, labels, one corrupt training file)."""
    from radlab.tasks.ich.synth import synthesize_ich

    root = tmp_path_factory.mktemp("ich")
    synthesize_ich(root, series=12, seed=2, size=64, workers=1)
    return root


@pytest.fixture(scope="session")
def tiny_ich_run(tiny_ich: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ICH run (1 slice epoch, embeddings, 2 sequence epochs) on `tiny_ich`."""
    from radlab.tasks.ich.train import train

    run = tmp_path_factory.mktemp("ich-runs") / "tiny"
    train(tiny_ich, run, "cpu-small", list(TINY_ICH_TRAIN))
    return run
