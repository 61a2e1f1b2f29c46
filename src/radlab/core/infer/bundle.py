"""Self-contained submission bundles (CodaLab style): `python src/predict.py INPUT OUTPUT`.

The bundle carries the trained run's files and a copy of radlab's own code, so the code that `radlab
TASK predict` runs is the code that makes the submission, wherever radlab's dependencies are installed.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import radlab
from radlab.core.engine.ensemble import ENSEMBLE_FILE, is_ensemble, read_manifest
from radlab.core.errors import RadlabDataError, RadlabError
from radlab.core.io.atomic import atomic_write_text

_ENTRY_POINT = '''"""Submission entry point for a radlab {title} model.

    python src/predict.py {usage}

Input paths are read relative to the working directory.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "vendor"))

from {entry_module} import codalab_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(codalab_main(sys.argv[1:], HERE / "model"))
'''


def bundle_main(argv: list[str], usage: str, predict: Callable[[str, str], str]) -> int:
    """What a bundle's predict.py runs: two arguments, `predict(input, output)` returning a summary line;
    radlab's errors become one line and their exit code."""
    if len(argv) != 2:
        print(f"usage: python src/predict.py {usage}", file=sys.stderr)
        return 2
    try:
        summary = predict(argv[0], argv[1])
    except RadlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"{summary} -> {argv[1]}", file=sys.stderr)
    return 0


def build_bundle(
    run_dir: str | Path, out_dir: str | Path, *, entry_module: str, files: Sequence[str], title: str, usage: str
) -> Path:
    """Write OUT_DIR/src/{predict.py, model/<files>, vendor/radlab/}; `files` are glob patterns inside the run
    (each must match at least one file). Returns the path of predict.py."""
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
    package = Path(radlab.__file__).resolve().parent
    shutil.copytree(package, src / "vendor" / "radlab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    entry = src / "predict.py"
    atomic_write_text(entry, _ENTRY_POINT.format(title=title, usage=usage, entry_module=entry_module))
    return entry
