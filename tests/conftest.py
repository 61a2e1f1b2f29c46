"""Shared fixtures: one factory (`tiny`) that makes each registered task's tiny synthetic data set, trains a
tiny run of it and a 2-fold ensemble, each once per test session; `tiny_<task>` / `tiny_<task>_run` name
its products for the tests that use one task."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The toy task (tests/toy) is a fifth challenge from outside radlab: its package and its entry point
# (radlab_toy-0.1.dist-info) are found on the path like any installed package's, here and in subprocesses.
TOY = str(Path(__file__).resolve().parent / "toy")
sys.path.insert(0, TOY)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (TOY, os.environ.get("PYTHONPATH")) if p)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist every worker gets one compute thread: two workers each starting two threads on two
    cores oversubscribe them and slow training tests several-fold. Subprocesses inherit the setting."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `-n 2 --dist loadgroup` (make test) each task's tests run on one worker, so that its tiny data,
    run and ensemble (session fixtures, one set per worker) are made once, not once per worker."""
    tasks = Path(__file__).resolve().parent / "tasks"
    for item in items:
        path = Path(str(item.path)).resolve()
        name = path.relative_to(tasks).parts[0] if path.is_relative_to(tasks) else None
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("name") in TINY:
            name = callspec.params["name"]
        if name in TINY:
            item.add_marker(pytest.mark.xdist_group(name))


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
TINY_MRNET_TRAIN = (
    "data.image_size=32",
    "data.num_workers=0",
    "predict.num_workers=0",
    "train.max_epochs=1",
    "train.progress=quiet",
)
TINY_PNEUMONIA_TRAIN = (
    "data.image_size=128",
    "data.num_workers=0",
    "predict.num_workers=0",
    "train.max_epochs=1",
    "train.batch_size=4",
    "train.progress=quiet",
)
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
TINY_TOY_TRAIN = ("train.max_epochs=2", "train.progress=quiet")


@dataclass(frozen=True)
class Tiny:
    """How the tests make one task's tiny data (its demo's synth with these sizes and seed) and train it."""

    sizes: dict[str, Any]
    seed: int
    train: tuple[str, ...]


TINY = {
    "mura": Tiny({"studies": 40, "workers": 1}, 7, TINY_TRAIN),
    "mrnet": Tiny({"exams": 16, "workers": 1}, 5, TINY_MRNET_TRAIN),
    "pneumonia": Tiny({"patients": 24, "size": 128, "workers": 1}, 3, TINY_PNEUMONIA_TRAIN),
    "ich": Tiny({"series": 12, "size": 64, "workers": 1}, 2, TINY_ICH_TRAIN),
    "toy": Tiny({"images": 32}, 0, TINY_TOY_TRAIN),
}


def tiny_sets(name: str, *extra: str) -> list[str]:
    """The task's tiny training overrides (and `extra`) as `--set` arguments."""
    return [arg for item in (*TINY[name].train, *extra) for arg in ("--set", item)]


class Factory:
    """Each task's tiny data set, tiny run and 2-fold ensemble, made on first use and kept for the session."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp = tmp_path_factory
        self.made: dict[tuple[str, str], Path] = {}

    def _once(self, kind: str, name: str, make: Any) -> Path:
        if (kind, name) not in self.made:
            self.made[kind, name] = make()
        return self.made[kind, name]

    def data(self, name: str) -> Path:
        from radlab.core.task import get_task

        def make() -> Path:
            root = self.tmp.mktemp(name)
            get_task(name).demo.get().synth(root, TINY[name].seed, **TINY[name].sizes)
            return root

        return self._once("data", name, make)

    def run(self, name: str) -> Path:
        from radlab.core.engine.driver import train
        from radlab.core.task import get_task

        def make() -> Path:
            run = self.tmp.mktemp(f"{name}-runs") / "tiny"
            train(get_task(name), self.data(name), run, "cpu-small", list(TINY[name].train))
            return run

        return self._once("run", name, make)

    def folds(self, name: str) -> Path:
        """A 2-fold ensemble trained under 2-process DDP on the CPU (gloo), through the command line."""

        def make() -> Path:
            out = self.tmp.mktemp(f"{name}-folds") / "ensemble"
            result = run_cli(
                name, "train", "--data-root", self.data(name), "--out", out, "--config", "cpu-small",
                *tiny_sets(name, "train.max_epochs=1"),
                "--folds", "2", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            return out

        return self._once("folds", name, make)

    def ensemble(self, name: str, *sets: str) -> Path:
        """A tiny run trained with extra `--set`s that make it an ensemble (kept epochs or members)."""
        from radlab.core.engine.driver import train
        from radlab.core.task import get_task

        def make() -> Path:
            out = self.tmp.mktemp(f"{name}-ensemble") / "run"
            train(get_task(name), self.data(name), out, "cpu-small", [*TINY[name].train, *sets])
            return out

        return self._once("ensemble:" + ",".join(sets), name, make)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Factory:
    return Factory(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_mura(tiny: Factory) -> Path:
    """A 40-study synthetic MURA-v1.1 tree (parent folder returned)."""
    return tiny.data("mura")


@pytest.fixture(scope="session")
def tiny_run(tiny: Factory) -> Path:
    """A finished (2-epoch, 32 px) MURA run directory trained on `tiny_mura`."""
    return tiny.run("mura")


@pytest.fixture(scope="session")
def tiny_mrnet(tiny: Factory) -> Path:
    """A 16-exam synthetic MRNet-v1.0 tree (parent folder returned)."""
    return tiny.data("mrnet")


@pytest.fixture(scope="session")
def tiny_mrnet_run(tiny: Factory) -> Path:
    """A finished one-epoch cpu-small MRNet run (three per-plane networks and the fusion)."""
    return tiny.run("mrnet")


@pytest.fixture(scope="session")
def tiny_pneumonia(tiny: Factory) -> Path:
    """24 synthetic patients at 128 px (train folder, test folder, label CSVs)."""
    return tiny.data("pneumonia")


@pytest.fixture(scope="session")
def tiny_pneumonia_run(tiny: Factory) -> Path:
    """A finished one-epoch cpu-small detector run on `tiny_pneumonia`."""
    return tiny.run("pneumonia")


@pytest.fixture(scope="session")
def tiny_ich(tiny: Factory) -> Path:
    """12 synthetic CT series at 64 px (train and test folders, labels, one corrupt training file)."""
    return tiny.data("ich")


@pytest.fixture(scope="session")
def tiny_ich_run(tiny: Factory) -> Path:
    """A finished ICH run (1 slice epoch, embeddings, 2 sequence epochs) on `tiny_ich`."""
    return tiny.run("ich")


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


def run_radlab(*args: str) -> subprocess.CompletedProcess[str]:
    """`radlab ARGS` in this process (no interpreter start-up), with run_cli's result: the exit code main()
    gives, and what it printed. For checks that end before, or soon after, any heavy work."""
    import contextlib
    import io
    import signal

    from radlab.cli import main

    out, err, code = io.StringIO(), io.StringIO(), 0
    handler, argv = signal.getsignal(signal.SIGTERM), sys.argv
    sys.argv = ["radlab", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = argv
        signal.signal(signal.SIGTERM, handler)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def retrain_weights(weights: Path, change: Any) -> None:
    """Rewrite a safetensors file as a training would leave it: the same names and metadata, `change` applied
    to its first floating-point tensor."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(weights), "pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    first = next(key for key, tensor in tensors.items() if tensor.is_floating_point() and tensor.ndim >= 1)
    tensors[first] = change(tensors[first])
    save_file(tensors, str(weights), metadata=metadata)
    _record_retrained(weights)


def _record_retrained(weights: Path) -> None:
    """A training records the sha256 of the weights it writes (RUN/environment.json): so does a simulated one."""
    from radlab.core.provenance.manifest import sha256_file
    from radlab.core.provenance.record import ENVIRONMENT, read_record

    folder = next((p for p in weights.absolute().parents if (p / ENVIRONMENT).is_file()), None)
    record = read_record(folder) if folder is not None else None
    if folder is not None and record is not None:
        record["weights"][weights.absolute().relative_to(folder).as_posix()] = sha256_file(weights)
        (folder / ENVIRONMENT).write_text(json.dumps(record))
