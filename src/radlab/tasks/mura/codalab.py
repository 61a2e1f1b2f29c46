"""`radlab codalab mura RUN_DIR OUT_DIR`: a self-contained CodaLab bundle.

OUT_DIR/src/predict.py runs `python src/predict.py valid_image_paths.csv predictions.csv` wherever radlab's
dependencies are installed: the bundle carries the model (weights, config, training statistics) and a copy
of radlab's own code, so the same code that `radlab mura predict` runs makes the submission.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import radlab
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabError
from radlab.core.io.atomic import atomic_write_text

ENTRY_POINT = '''"""CodaLab entry point for a radlab MURA model.

    python src/predict.py IMAGE_PATHS_CSV PREDICTIONS_CSV

Image paths are read relative to the working directory; one `study/,label` row per study is written.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "vendor"))

from radlab.tasks.mura.predict import codalab_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(codalab_main(sys.argv[1:], HERE / "model"))
'''

RUN_FILES = ("config.yaml", "model.safetensors", "data_stats.json", "metrics.json")


def build_bundle(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write OUT_DIR/src/{predict.py, model/, vendor/radlab/}; returns the path of predict.py."""
    run = RunDir(Path(run_dir))
    run.require_model()
    src = Path(out_dir) / "src"
    if src.exists():
        raise RadlabError(f"{src} already exists; choose an empty OUT_DIR")
    model_dir = src / "model"
    model_dir.mkdir(parents=True)
    for name in RUN_FILES:
        if run.file(name).is_file():
            shutil.copy2(run.file(name), model_dir / name)
    package = Path(radlab.__file__).resolve().parent
    shutil.copytree(package, src / "vendor" / "radlab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    entry = src / "predict.py"
    atomic_write_text(entry, ENTRY_POINT)
    return entry
