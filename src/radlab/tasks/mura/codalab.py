"""`radlab codalab mura RUN_DIR OUT_DIR`: the CodaLab bundle for a MURA run.

OUT_DIR/src/predict.py runs `python src/predict.py valid_image_paths.csv predictions.csv` (the contract of the
MURA leaderboard) wherever radlab's dependencies are installed.
"""

from __future__ import annotations

from pathlib import Path

from radlab.core.infer.bundle import build_bundle as _build_bundle


def build_bundle(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Bundle the run's weights, config and training statistics with radlab's code; returns predict.py."""
    return _build_bundle(
        run_dir,
        out_dir,
        entry_module="radlab.tasks.mura.predict",
        files=["config.yaml", "model.safetensors", "data_stats.json", "metrics.json"],
        title="MURA",
        usage="IMAGE_PATHS_CSV PREDICTIONS_CSV",
    )
