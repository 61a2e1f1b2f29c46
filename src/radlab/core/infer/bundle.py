"""Self-contained submission bundles (CodaLab style): `python src/predict.py INPUT OUTPUT`.

The bundle carries the trained run's files and a copy of radlab's own code (and of the task's package,
when the task lives outside radlab), so the code that `radlab TASK predict` runs is the code that makes
the submission, wherever radlab's dependencies are installed. The task's package exposes its `TASK`.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import radlab
from radlab.core.engine.ensemble import ENSEMBLE_FILE, is_ensemble, read_manifest
from radlab.core.errors import RadlabDataError, RadlabError, exit_code_of
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.outputs import check_outputs

if TYPE_CHECKING:
    from radlab.core.task import Task

_ENTRY_POINT = '''"""Submission entry point for a radlab {title} model.

    python src/predict.py {usage}

Input paths are read relative to the working directory.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "vendor"))

from radlab.core.infer.bundle import bundle_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(bundle_main("{package}", sys.argv[1:], HERE / "model"))
'''


def bundle_main(package: str, argv: list[str], model_dir: Path) -> int:
    """What a bundle's predict.py runs: the task of `package` predicts INPUT into OUTPUT with the bundled
    model; radlab's errors become one line and their exit code."""
    task: Task = importlib.import_module(package).TASK
    assert task.codalab is not None  # a bundle is only built for a task that has the capability
    if len(argv) != 2:
        print(f"usage: python src/predict.py {task.codalab.usage}", file=sys.stderr)
        return 2
    codalab = task.codalab

    def predict() -> None:
        check_outputs([argv[1]], inputs=[argv[0]], models=[model_dir])
        summary = codalab.predict.get()(argv[0], argv[1], model_dir)
        print(f"{summary} -> {argv[1]}", file=sys.stderr)

    return exit_code_of(predict)


def build_bundle(task: Task, run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write OUT_DIR/src/{predict.py, model/<files>, vendor/radlab/ (and the task's package)}; the task's
    `codalab.files` are glob patterns inside the run, each matching at least one file. Returns predict.py."""
    if task.codalab is None:
        raise RadlabError(f"no CodaLab bundle for {task.name}")
    files: list[str] = list(task.codalab.files)
    run_dir = Path(run_dir)
    src = Path(out_dir) / "src"
    if src.exists():
        raise RadlabError(f"{src} already exists; choose an empty OUT_DIR")
    if is_ensemble(run_dir):  # a --folds ensemble: its manifest and every member's files, predicted averaged
        members = read_manifest(run_dir)["members"]
        files = [ENSEMBLE_FILE, *(f"{member}/{pattern}" for member in members for pattern in files)]
    chosen: list[Path] = []
    for pattern in files:
        matches = sorted(p for p in run_dir.glob(pattern) if p.is_file())
        if not matches:
            raise RadlabDataError(run_dir / pattern, "missing: not a finished radlab run directory (train first)")
        chosen += matches
    for path in chosen:
        target = src / "model" / path.relative_to(run_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    top_level = task.package.split(".")[0]
    packages = {radlab.__name__, top_level}
    for name in sorted(packages):
        folder = Path(importlib.import_module(name).__file__ or "").resolve().parent
        shutil.copytree(folder, src / "vendor" / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    entry = src / "predict.py"
    atomic_write_text(entry, _ENTRY_POINT.format(title=task.name, usage=task.codalab.usage, package=task.package))
    return entry
