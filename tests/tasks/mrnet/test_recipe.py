"""The MRNet unit recipe against the Stanford baseline (yashbhalgat/MRNet-Competition src/{loader,train}.py):
its per-exam class weights, one exam per optimiser step, and the paper preset's settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from radlab.core.task import get_task
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet.data import SeriesDataset, collate_exams
from radlab.tasks.mrnet.model import Unit, build_unit_model
from radlab.tasks.mrnet.recipe import LossWeights, MRNetUnitRecipe, class_weights, loss_weights

load_mrnet_config = get_task("mrnet").load_config

# Training labels (abnormal, acl, meniscus) of four exams: p = 3/4, 1/4, 1/2.
LABELS = np.array([[1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 1]])
LOG2, SOFTPLUS2 = math.log(2.0), math.log1p(math.exp(2.0))  # BCE of logit 0 (label 1), of logit 2 (label 0)


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        ("baseline", [[0.75, 0.25, 0.5], [0.25, 0.75, 0.5]]),  # [p, 1 - p]
        ("pos_weight", [[1.0, 1.0, 1.0], [1 / 3, 3.0, 1.0]]),  # [1, negatives / positives]
        ("none", [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]),
    ],
)
def test_class_weights_of_each_scheme(scheme, expected):
    assert class_weights(LABELS, scheme).tolist() == expected


@pytest.mark.parametrize("scheme", ["baseline", "pos_weight"])
def test_a_task_with_one_class_is_weighted_evenly(scheme):
    assert class_weights(np.array([[1, 0], [1, 1]]), scheme)[:, 0].tolist() == [1.0, 1.0]


def test_the_baseline_validation_loss_uses_the_validation_labels_prevalence():
    valid = np.array([[1, 1, 1], [0, 1, 0]])
    weights = loss_weights("baseline", LABELS, valid)
    assert weights.valid.tolist() == [[0.5, 1.0, 0.5], [0.5, 1.0, 0.5]]  # acl: one class, weighted evenly
    assert loss_weights("pos_weight", LABELS, valid).valid.tolist() == class_weights(LABELS, "pos_weight").tolist()


class FixedLogits(nn.Module):
    """Stands in for a unit network: the same logits whatever the slices."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = torch.tensor(logits).reshape(-1, 1)
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, slices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.logits + self.weight


def _batch(labels: list[list[float]]) -> dict:
    n = len(labels)
    return {
        "index": torch.arange(n),
        "labels": torch.tensor(labels, dtype=torch.float32),
        "planes": {"sagittal": {"slices": torch.zeros((n, 1, 8, 8)), "lengths": torch.ones(n, dtype=torch.int64)}},
        "errors": {"sagittal": [""] * n},
    }


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        # acl: p = 1/4, so a positive weighs 3/4 and a negative 1/4 (loader.py weighted_loss)
        ("baseline", (0.75 * LOG2 + 0.25 * SOFTPLUS2) / 2),
        ("pos_weight", (3.0 * LOG2 + SOFTPLUS2) / 2),
        ("none", (LOG2 + SOFTPLUS2) / 2),
    ],
)
def test_the_loss_of_a_hand_made_batch(scheme, expected):
    config = load_mrnet_config("paper", ["model.pretrained=false", f"train.class_weighting={scheme}"])
    weights = loss_weights(scheme, LABELS, LABELS)
    recipe = MRNetUnitRecipe(config, Unit("sagittal", ("acl",), "per_task"), weights, FixedLogits([0.0, 2.0]))
    loss, _, _, _ = recipe._step(_batch([[1, 1, 0], [0, 0, 1]]), recipe.train_weights)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("value", "scheme"), [(True, "pos_weight"), (False, "none"), ("baseline", "baseline")])
def test_run_configs_with_the_old_boolean_still_load(value, scheme):
    config = load_mrnet_config("paper", [f"train.class_weighting={str(value).lower()}"])
    assert config.train.class_weighting == scheme


def test_paper_preset_follows_the_stanford_baseline():
    config = load_mrnet_config("paper")
    assert config.model.dropout == 0.0 and config.train.class_weighting == "baseline"
    assert (config.optim.plateau_factor, config.optim.plateau_patience) == (0.3, 5)
    assert config.train.batch_size == 1 and config.predict.batch_size == 4
    assert config.train.max_epochs == 50 and config.train.early_stopping_patience is None
    assert load_mrnet_config("cpu-small").train.batch_size > 1  # the fast preset packs several exams per step


def test_one_exam_per_step_trains(tmp_path, one_thread):
    torch.manual_seed(0)
    config = load_mrnet_config(
        "paper", ["model.backbone=test_resnet", "model.pretrained=false", "data.image_size=32", "train.tasks=[acl]"]
    )
    unit = Unit("sagittal", ("acl",), "per_task")
    recipe = MRNetUnitRecipe(config, unit, LossWeights(class_weights(LABELS, "baseline"), np.ones((2, 3))))
    np.save(tmp_path / "0000.npy", np.random.default_rng(0).integers(0, 256, (5, 40, 40), dtype=np.uint8))
    series = SeriesDataset({"sagittal": [tmp_path / "0000.npy"]}, VolumeTransform(32), np.array([[1.0, 1.0, 0.0]]))
    batch = collate_exams([series[0]])  # a batch of one exam, as train.batch_size=1 makes
    assert batch["planes"]["sagittal"]["lengths"].tolist() == [5] and batch["errors"]["sagittal"] == [""]
    optimiser = torch.optim.Adam(recipe.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in recipe.model.head.parameters()]
    loss, _, _, _ = recipe._step(batch, recipe.train_weights)
    loss.backward()
    optimiser.step()
    assert torch.isfinite(loss) and loss.item() > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, recipe.model.head.parameters(), strict=True))
    assert build_unit_model(config, unit).dropout.p == 0.0
