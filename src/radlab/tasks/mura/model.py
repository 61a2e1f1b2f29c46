"""The MURA network: a timm backbone with one logit, normalisation inside; building and loading it."""

from __future__ import annotations

from pathlib import Path

from radlab.core.engine.run_dir import RunDir
from radlab.core.models import ImageClassifier, build_image_classifier, load_trained
from radlab.tasks.mura import MuraConfig


def build_model(config: MuraConfig, initialise: bool = True) -> ImageClassifier:
    """The classifier of `config`; `initialise` loads the configured pretrained weights (training only)."""
    return build_image_classifier(
        config.model.backbone,
        1,
        config.data.mean,
        config.data.std,
        **config.model.weights(initialise),
        drop_rate=config.model.drop_rate,
    )


def load_model(run_dir: str | Path) -> tuple[MuraConfig, ImageClassifier]:
    """Rebuild the network of a finished run and load its weights (safetensors only)."""
    from radlab.tasks.mura import TASK

    run = RunDir(Path(run_dir))
    run.require_model()
    config: MuraConfig = TASK.run_config(run.root)
    return config, load_trained(build_model(config, initialise=False), run.weights, config.model.backbone)
