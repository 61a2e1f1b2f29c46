"""`radlab codalab mrnet RUN_DIR OUT_DIR`: a bundle running `python src/predict.py paths.csv predictions.csv`."""

from __future__ import annotations

from pathlib import Path

from radlab.core.infer.bundle import build_bundle as _build_bundle


def build_bundle(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Bundle the unit weights, the fusion and the config with radlab's code; returns predict.py."""
    return _build_bundle(
        run_dir,
        out_dir,
        entry_module="radlab.tasks.mrnet.predict",
        files=["config.yaml", "fusion.json", "units/*/model.safetensors"],
        title="MRNet",
        usage="PATHS_CSV PREDICTIONS_CSV",
    )
