"""The switches that let the `paper` preset follow pdima/kaggle_RSNA_Pneumonia_Detection item by item: backbone,
batch norm, box loss, matching, anchor grid, threshold grid and augmentation draws; cpu-small keeps radlab's."""

import math

import albumentations as A
import numpy as np
import pytest
import timm
import torch
from torchvision.ops import box_iou

from radlab.core.task import get_task
from radlab.tasks.pneumonia import AugmentConfig, ModelConfig
from radlab.tasks.pneumonia.data import CoarseSaltAndPepper, DetectionTransform, RecipeAffine, RecipeGamma
from radlab.tasks.pneumonia.model import PneumoniaDetector

# train.py check_metric: boxes are kept when score * 5 > T for T in this list.
RECIPE_SWEEP = [
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
    1.1,
    1.2,
    1.4,
    1.6,
    2.0,
    3.0,
    4.0,
]


def _config(*overrides, preset="cpu-small"):
    return get_task("pneumonia").load_config(preset, ["data.image_size=64", *overrides])


def _detector(*overrides):
    torch.manual_seed(0)
    return PneumoniaDetector(_config(*overrides))


def _anchors(detector, size=64):
    with torch.no_grad():
        raw = detector.raw_outputs(torch.zeros(1, 1, size, size, dtype=torch.uint8))
    return raw["anchors"][0], raw["per_level"]


def test_paper_preset_follows_the_recipe():
    config = get_task("pneumonia").load_config("paper", [])
    model, augment = config.model, config.augment
    assert (model.backbone, model.freeze_bn, model.box_loss) == ("legacy_seresnext101_32x4d", "stats", "original")
    assert (model.low_quality_matches, model.anchor_offset) == (False, 0.5)
    assert (augment.draws, augment.scale_sigma_log2, augment.rotate_sigma_deg) == ("normal", 0.15, 6.0)
    assert (augment.shear_sigma_deg, augment.gamma_sigma_log2, augment.shift_fraction) == (4.0, 0.25, 32 / 1024)
    assert (augment.blur, augment.blur_sigma, augment.noise, augment.noise_std) == (0.5, 2.0, 0.5, 0.04)
    assert (augment.salt_pepper, augment.salt_pepper_amount, augment.salt_pepper_size) == (0.1, 0.01, (0.1, 0.2))
    assert augment.hflip == 0.0  # utils.py TransformCfg.transform() never applies the drawn flip


def test_paper_thresholds_are_the_recipes_grid_divided_by_5():
    thresholds = get_task("pneumonia").load_config("paper", []).postprocess.thresholds
    assert thresholds == pytest.approx([t / 5 for t in RECIPE_SWEEP], abs=1e-12)
    assert 0.06 in thresholds  # prepare_submission.py's default T = 0.3, as a raw score


def test_cpu_small_keeps_radlabs_choices():
    config = get_task("pneumonia").load_config("cpu-small", [])
    model, augment = config.model, config.augment
    assert (model.freeze_bn, model.box_loss, model.low_quality_matches, model.anchor_offset) == (
        "none",
        "torchvision",
        True,
        0.0,
    )
    assert (augment.draws, augment.shift_fraction, augment.hflip, augment.salt_pepper) == ("uniform", 0.03, 0.5, 0.0)
    assert config.postprocess.thresholds == (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8)


@pytest.mark.parametrize(("value", "mode"), [(True, "all"), (False, "none"), ("stats", "stats"), ("all", "all")])
def test_freeze_bn_reads_old_booleans(value, mode):
    assert ModelConfig(freeze_bn=value).freeze_bn == mode


@pytest.mark.parametrize(
    ("name", "channels"),
    [("legacy_seresnet18", [64, 128, 256, 512]), ("legacy_seresnext101_32x4d", [256, 512, 1024, 2048])],
)
def test_legacy_senet_stages_are_c2_to_c5(name, channels):
    """Cadene's SENets (timm legacy_*) give layer1..layer4 at strides 4..32 for out_indices (1, 2, 3, 4), the
    encoder outputs x1..x4 of the recipe's model_se_resnext.py."""
    trunk = timm.create_model(name, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
    assert trunk.feature_info.channels() == channels
    assert trunk.feature_info.reduction() == [4, 8, 16, 32]


def test_fpn_is_built_on_a_legacy_senet():
    detector = _detector("model.backbone=legacy_seresnet18", "model.levels=[2,3,4,5,6,7]", "model.fpn_channels=16")
    fpn = detector.retinanet.backbone.fpn
    assert [block[0].in_channels for block in fpn.inner_blocks] == [64, 128, 256, 512]
    assert fpn.extra_blocks.p6.in_channels == 512
    with torch.no_grad():
        pyramid, last = detector.retinanet.backbone(torch.zeros(1, 3, 64, 64))
    assert [tuple(p.shape[-2:]) for p in pyramid.values()] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    assert last.shape[1] == 512


def _first_norm(detector):
    return next(m for m in detector.retinanet.backbone.trunk.modules() if "BatchNorm" in type(m).__name__)


@pytest.mark.parametrize(
    ("mode", "statistics_move", "scale_moves"), [("all", False, False), ("stats", False, True), ("none", True, True)]
)
def test_batch_norm_modes(mode, statistics_move, scale_moves):
    detector = _detector(f"model.freeze_bn={mode}")
    detector.train()
    norm = _first_norm(detector)
    assert norm.training is (mode != "stats")
    mean, weight = norm.running_mean.clone(), norm.weight.detach().clone()
    optimiser = torch.optim.SGD([p for p in detector.parameters() if p.requires_grad], lr=1.0)
    pixels = torch.randint(0, 256, (2, 1, 64, 64), dtype=torch.uint8)
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.zeros(1, dtype=torch.int64)}] * 2
    losses = detector(pixels, targets)["losses"]
    sum(losses.values()).backward()
    optimiser.step()
    assert (not torch.equal(norm.running_mean, mean)) is statistics_move
    assert (not torch.equal(norm.weight.detach(), weight)) is scale_moves


@pytest.mark.parametrize(
    ("box_loss", "expected"),
    [
        # Differences 0.05, 0.5, 0, 0 on the one positive anchor. The recipe: smooth L1 with beta 1/9
        # (0.5 x 9 x d^2 below 1/9, d - 0.5/9 above), the mean of the 4 coordinates; torchvision: beta 1
        # (0.5 x d^2), the sum / 1 positive. The second image has no box and adds 0; the mean is over 2 images.
        ("original", (0.5 * 9 * 0.05**2 + (0.5 - 0.5 / 9)) / 4 / 2),
        ("torchvision", (0.5 * 0.05**2 + 0.5 * 0.5**2) / 1 / 2),
    ],
)
def test_box_loss_normalisation(box_loss, expected):
    head = _detector(f"model.box_loss={box_loss}").retinanet.head.regression_head
    anchors = [torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 20.0, 20.0]])] * 2
    targets = [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]])}, {"boxes": torch.zeros((0, 4))}]
    regression = torch.tensor([[[0.05, -0.5, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]], [[3.0, 3.0, 3.0, 3.0]] * 2])
    matched = [torch.tensor([0, -1]), torch.tensor([-1, -1])]
    loss = head.compute_loss(targets, {"bbox_regression": regression}, anchors, matched)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("allow", [False, True])
def test_low_quality_matches(allow):
    """A tall thin box overlaps every anchor by less than IoU 0.5: it gets no positive anchor without
    low-quality matches (the recipe), and its best anchors with them (torchvision's default)."""
    detector = _detector(f"model.low_quality_matches={str(allow).lower()}")
    anchors, _ = _anchors(detector)
    iou = box_iou(torch.tensor([[8.0, 8.0, 12.0, 56.0]]), anchors)
    assert iou.max() < 0.5
    matched = detector.retinanet.proposal_matcher(iou)
    best = int((iou[0] == iou.max()).sum())
    assert int((matched >= 0).sum()) == (best if allow else 0)


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_first_anchor_centre_per_level(offset):
    """At 128 px the levels P3..P7 have strides 8..128; each level's first anchor is centred at offset x stride
    (the recipe's anchors.py shift(): (0 + 0.5) x stride)."""
    detector = _detector(f"model.anchor_offset={offset}")
    anchors, per_level = _anchors(detector, size=128)
    per_location = len(anchors) // sum(per_level)
    starts = np.cumsum([0, *per_level[:-1]]) * per_location
    levels = _config().model.levels
    centres = [((anchors[s, 0] + anchors[s, 2]) / 2, (anchors[s, 1] + anchors[s, 3]) / 2) for s in starts]
    assert [(float(x), float(y)) for x, y in centres] == [(offset * 2**level,) * 2 for level in levels]


def _pipeline_steps(augment):
    return [t for t in DetectionTransform(64, True, augment, seed=0).pipeline.transforms]


def test_uniform_draws_keep_radlabs_pipeline():
    steps = [type(t) for t in _pipeline_steps(AugmentConfig())]
    assert steps == [A.Resize, A.Affine, A.HorizontalFlip, A.RandomGamma, A.GaussNoise, A.GaussianBlur]


def test_normal_draws_are_the_recipes_pipeline_in_its_order():
    steps = _pipeline_steps(get_task("pneumonia").load_config("paper", []).augment)
    kinds = [type(t) for t in steps]
    assert kinds == [
        A.Resize,
        RecipeAffine,
        A.HorizontalFlip,
        RecipeGamma,
        CoarseSaltAndPepper,
        A.GaussianBlur,
        A.GaussNoise,
    ]
    salt, blur, noise = steps[4], steps[5], steps[6]
    assert (salt.p, salt.amount, salt.size) == (0.1, 0.01, (0.1, 0.2))
    assert (blur.p, blur.sigma_limit, noise.p, noise.std_range) == (0.5, (0.01, 2.0), 0.5, (0.0, 0.04))


def _draws(augment, count=4000):
    steps = _pipeline_steps(augment)
    affine = next(t for t in steps if isinstance(t, RecipeAffine))
    gamma = next(t for t in steps if isinstance(t, RecipeGamma))
    drawn = [affine.draw() for _ in range(count)]
    gammas = [gamma.get_params_dependent_on_data({}, {})["gamma"] for _ in range(count)]
    return {key: np.array([d[key] for d in drawn]) for key in drawn[0]} | {"gamma": np.array(gammas)}


@pytest.mark.parametrize(
    ("key", "to_normal", "sigma"),
    [
        ("scale_x", np.log2, 0.15),
        ("scale_y", np.log2, 0.15),
        ("rotate", None, 6.0),
        ("shear", None, 4.0),
        ("gamma", np.log2, 0.25),
        ("shift_x", None, 0.03125 / math.sqrt(3)),  # U(-f, f) has std f / sqrt(3)
        ("shift_y", None, 0.03125 / math.sqrt(3)),
    ],
)
def test_normal_draws_have_the_configured_spread(key, to_normal, sigma):
    values = _draws(get_task("pneumonia").load_config("paper", []).augment)[key]
    values = to_normal(values) if to_normal is not None else values
    assert abs(values.mean()) < 0.05 * sigma
    assert values.std() == pytest.approx(sigma, rel=0.05)
    if key.startswith("shift"):
        assert np.abs(values).max() <= 0.03125


@pytest.mark.parametrize("seed", range(5))
def test_normal_draws_move_boxes_with_the_pixels(seed):
    """A bright off-centre rectangle, flipped and warped with the recipe's draws (no intensity steps): the box
    is centred on the rectangle's pixels, lies within their extent (the "ellipse" rule does not grow it under
    rotation) and keeps their area."""
    augment = AugmentConfig(draws="normal", hflip=1.0, gamma_sigma_log2=0.0, noise=0.0, blur=0.0)
    image = np.zeros((256, 256), np.uint8)
    image[60:100, 40:120] = 255
    out, boxes = DetectionTransform(256, True, augment, seed=seed)(image, np.array([[40.0, 60.0, 120.0, 100.0]]))
    ys, xs = np.nonzero(out[0].numpy() > 127)
    assert len(boxes) == 1
    box = boxes[0].numpy()
    centre = (box[:2] + box[2:]) / 2
    assert centre[0] > 128  # flipped to the right half
    np.testing.assert_allclose(centre, [xs.mean() + 0.5, ys.mean() + 0.5], atol=1.5)
    assert xs.min() - 1.5 <= box[0] and box[2] <= xs.max() + 2.5
    assert ys.min() - 1.5 <= box[1] and box[3] <= ys.max() + 2.5
    assert 0.9 < (box[2] - box[0]) * (box[3] - box[1]) / len(xs) < 1.15


def test_coarse_salt_and_pepper_replaces_whole_cells():
    """With a 10% grid on a 200 px image each replaced cell is a 10 x 10 block; about `amount` of them are."""
    noise = CoarseSaltAndPepper(amount=0.25, size=(0.1, 0.1), p=1.0)
    A.Compose([noise], seed=3)
    params = noise.get_params_dependent_on_data({"shape": (200, 200)}, {})
    blocks = params["noise_mask"].reshape(20, 10, 20, 10)
    assert (blocks.all(axis=(1, 3)) == blocks.any(axis=(1, 3))).all()
    assert 0.15 < params["noise_mask"].mean() < 0.35
    out = noise.apply(np.full((200, 200), 128, np.uint8), **params)
    assert np.array_equal(out[params["noise_mask"]], params["noise_values"])
    assert (out[~params["noise_mask"]] == 128).all()
