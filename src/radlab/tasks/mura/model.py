"""The MURA network: a timm backbone with one logit, normalisation inside; building and loading it."""

from __future__ import annotations

from pathlib import Path

from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.models import ImageClassifier, build_image_classifier, load_weights
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
    model = build_model(config, initialise=False)
    state = load_weights(run.weights)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RadlabDataError(
            run.weights,
            f"weights do not match {config.model.backbone} (missing {len(missing)}, unexpected {len(unexpected)})",
        )
    return config, model.eval()
