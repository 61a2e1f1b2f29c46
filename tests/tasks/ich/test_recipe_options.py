"""The ICH paper preset's items against darraghdog/rsna, and radlab's switchable alternatives: the WSL
backbone tag, the no-crop pipeline, the original fold rule, the clipped validation metric, the slice order
and the sequence padding."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from radlab.core.errors import RadlabConfigError
from radlab.core.io.dicom import read_dicom
from radlab.core.task import get_task
from radlab.core.transforms.windowing import crop_black_border, resize_square, stored_and_rescale, window_stack
from radlab.tasks.ich.data import (
    SequenceDataset,
    SliceDataset,
    SliceInfo,
    TrainingTable,
    collate_sequences,
    fold_rows,
    original_folds,
    read_metadata,
    sequences,
)
from radlab.tasks.ich.evaluate import scores, weighted_log_loss
from radlab.tasks.ich.formats import TRAIN_IMAGES
from radlab.tasks.ich.model import (
    SequenceModel,
    build_slice_model,
    embed_slices,
    embedding_source,
    sequence_probs,
    slice_embeddings,
)

load_ich_config = get_task("ich").load_config
WSL = "resnext101_32x8d.fb_wsl_ig1b_ft_in1k"


def test_paper_preset_values():
    config = load_ich_config("paper")
    assert config.model.backbone == WSL and timm.is_model(WSL)
    assert config.data.crop and config.data.slice_order == "position"
    assert config.data.pixel_representation_fix == "auto"  # radlab's fix, kept
    assert config.train.fold_rule == "original" and config.train.validation_clip == 1e-5
    assert config.sequence.packing  # radlab's packing, kept


def test_a_backbone_tag_passes_through_to_timm():
    config = load_ich_config("paper", ["model.backbone=resnet18.a1_in1k", "model.pretrained=false"])
    model = build_slice_model(config).eval()
    assert model.backbone.pretrained_cfg["tag"] == "a1_in1k" and model.backbone.num_features == 512
    with torch.no_grad():
        assert model(torch.zeros((1, 3, 64, 64), dtype=torch.uint8)).shape == (1, 6)


# --- the no-crop pipeline (the recipe's v02) ---------------------------------------------------------------


def _expected_windows(path: Path, size: int, crop: bool) -> np.ndarray:
    """The slice as the plain composition makes it: windows of the whole slice, cropped or not, resized."""
    ds, stored = read_dicom(path)
    values, slope, intercept = stored_and_rescale(ds, stored, "auto")
    stack = window_stack(values, slope, intercept)
    return resize_square(crop_black_border(stack) if crop else stack, size)


@pytest.mark.parametrize("crop", [False, True])
def test_slices_decode_with_and_without_the_crop(tiny_ich, tmp_path, crop):
    paths = sorted((tiny_ich / TRAIN_IMAGES).glob("*.dcm"))[:4]
    plain = SliceDataset(paths, 48, crop=crop)
    cached = SliceDataset(paths, 48, crop=crop, cache_dir=tmp_path / "cache")
    for k, path in enumerate(paths):
        expected = torch.from_numpy(_expected_windows(path, 48, crop).transpose(2, 0, 1).copy())
        assert torch.equal(plain[k]["image"], expected) and torch.equal(cached[k]["image"], expected)
    other = SliceDataset(paths, 48, crop=not crop)[0]["image"]
    assert not torch.equal(plain[0]["image"], other)  # the synthetic heads have a black border to crop


def test_no_crop_embeddings_are_of_the_whole_slice(tiny_ich):
    paths = sorted((tiny_ich / TRAIN_IMAGES).glob("*.dcm"))[:3]
    overrides = ["model.backbone=test_resnet", "model.pretrained=false", "data.image_size=48"]
    config = load_ich_config("cpu-small", [*overrides, "data.crop=false", "embeddings.tta=[none]"])
    torch.manual_seed(0)
    model = build_slice_model(config).eval()
    embedded = embed_slices(model, paths, config, batch_size=2, num_workers=0, device="cpu")
    pixels = torch.from_numpy(np.stack([_expected_windows(p, 48, False).transpose(2, 0, 1) for p in paths]))
    with torch.no_grad():
        expected = slice_embeddings(model, pixels).numpy()
    assert embedded.readable.all() and np.allclose(embedded.embeddings, expected, atol=1e-5)
    cropped = load_ich_config("cpu-small", [*overrides, "embeddings.tta=[none]"])
    assert embedding_source(config, "w", paths) != embedding_source(cropped, "w", paths)  # caches kept apart


# --- the original fold rule (prepare_folds.py) ---------------------------------------------------------------

# Rows in label-file order; sorted by image id they are a, b, c, d, e, f, g, so the patients' first rows
# sit at positions P2: 0, P1: 1, P3: 3, P4: 5, P5: 6, and their folds mod 5 are 0, 1, 3, 0, 1.
IMAGES = ["ID_c", "ID_a", "ID_e", "ID_b", "ID_d", "ID_g", "ID_f"]
PATIENTS = ["P2", "P2", "P1", "P1", "P3", "P5", "P4"]


def _table(images: list[str], patients: list[str]) -> TrainingTable:
    infos = [
        SliceInfo(i, Path(f"{i}.dcm"), p, "study", f"series-{p}", 0.0) for i, p in zip(images, patients, strict=True)
    ]
    labels = np.zeros((len(images), 6))
    labels[::2, 5] = 1
    return TrainingTable(infos, labels, [])


def test_original_folds_are_the_first_row_of_each_patient_mod_5():
    assert original_folds(IMAGES, PATIENTS, 5).tolist() == [0, 0, 1, 1, 3, 1, 0]
    assert original_folds(IMAGES, PATIENTS, 2).tolist() == [0, 0, 1, 1, 1, 0, 1]


@pytest.mark.parametrize("seed", range(3))
def test_original_folds_equal_prepare_folds_run_on_a_label_table(seed):
    """prepare_folds.py's steps in pandas: one row per image (the pivot sorts on Image), the patient's first
    row index, mod 5."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    images = [f"ID_{rng.integers(16**8):08x}" for _ in range(60)]
    patients = [f"P{rng.integers(12)}" for _ in range(60)]
    table = pd.DataFrame({"Image": images, "PatientID": patients}).sort_values("Image").reset_index(drop=True)
    folddf = table["PatientID"].reset_index(drop=True).drop_duplicates().reset_index()
    folddf["fold"] = folddf["index"].values % 5
    fold_of = dict(zip(folddf["PatientID"], folddf["fold"], strict=True))
    assert original_folds(images, patients, 5).tolist() == [fold_of[p] for p in patients]


@pytest.mark.parametrize(("fold", "held_out"), [(0, [0, 1, 6]), (1, [2, 3, 5]), (3, [4])])
def test_fold_rows_under_the_original_rule(fold, held_out):
    config = load_ich_config("paper", [f"train.fold={fold}"])
    kept, out = fold_rows(_table(IMAGES, PATIENTS), config)
    assert out == held_out and sorted(kept + out) == list(range(len(IMAGES)))


def test_an_empty_original_fold_is_refused():
    with pytest.raises(RadlabConfigError, match="holds no patient"):
        fold_rows(_table(IMAGES, PATIENTS), load_ich_config("paper", ["train.fold=2"]))


def test_stratified_folds_keep_patients_together():
    config = load_ich_config("paper", ["train.fold_rule=stratified", "train.folds=2"])
    kept, out = fold_rows(_table(IMAGES, PATIENTS), config)
    assert not {PATIENTS[i] for i in kept} & {PATIENTS[i] for i in out}


# --- validation log loss clipped at 1e-5 (trainlstm.py) ------------------------------------------------------

LABELS = np.array([[1.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
PROBS = np.array([[0.0, 1.0, 0.5, 0.5, 0.5, 1e-7]])
EPS = np.finfo(np.float64).eps


@pytest.mark.parametrize(
    ("clip", "expected"),
    [
        # epidural p=0 (y=1), intraparenchymal p=1 (y=0), three at 0.5, any p=1e-7 (y=1, weight 2)
        (1e-5, (-math.log(1e-5) - math.log1p(-(1 - 1e-5)) + 3 * math.log(2) - 2 * math.log(1e-5)) / 7),
        (None, (-math.log(EPS) - math.log1p(-(1 - EPS)) + 3 * math.log(2) - 2 * math.log(1e-7)) / 7),
    ],
)
def test_validation_clip(clip, expected):
    assert weighted_log_loss(LABELS, PROBS, clip=clip) == pytest.approx(expected, rel=1e-12)
    per_subtype = scores(LABELS, PROBS, clip=clip)
    assert per_subtype["weighted_log_loss"] == pytest.approx(expected, rel=1e-12)
    low = EPS if clip is None else clip
    assert per_subtype["epidural_log_loss"] == pytest.approx(-math.log(low), rel=1e-12)


def test_scores_default_is_unchanged():
    assert scores(LABELS, PROBS) == scores(LABELS, PROBS, clip=None)


# --- slice order within a series (trainlstm.py sorts on ImagePos1, 2, 3) ------------------------------------


def _tilted(order_of_writing: list[int]) -> list[SliceInfo]:
    """One gantry-tilted series: y falls 2 mm as z rises 5 mm, and one slice has a smaller x."""
    infos = []
    for k in order_of_writing:
        x = -125.0 if k != 3 else -126.0
        position = (x, -120.0 - 2.0 * k, 100.0 + 5.0 * k)
        infos.append(SliceInfo(f"ID_{k}", Path(f"ID_{k}.dcm"), "P", "S", "R", position[2], position))
    return infos


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("z", ["ID_0", "ID_1", "ID_2", "ID_3", "ID_4"]),  # by z
        ("position", ["ID_3", "ID_4", "ID_2", "ID_1", "ID_0"]),  # x first (slice 3), then y rising
    ],
)
def test_slice_orders_of_a_tilted_series(order, expected):
    infos = _tilted([2, 0, 4, 3, 1])
    (group,) = sequences(infos, order)
    assert [infos[i].image for i in group] == expected
    table = TrainingTable(infos, np.zeros((5, 6)), [], order)
    assert [infos[i].image for i in table.series(list(range(5)), np.ones(5, dtype=bool))[0]] == expected


def test_slices_without_a_position_go_last_in_either_order():
    infos = _tilted([1, 0])
    infos.append(SliceInfo("ID_9", Path("ID_9.dcm"), "P", "S", "R", math.nan))
    for order in ("z", "position"):
        assert [infos[i].image for i in sequences(infos, order)[0]][-1] == "ID_9"


def test_headers_give_the_whole_position(tiny_ich):
    infos, _ = read_metadata(sorted((tiny_ich / TRAIN_IMAGES).glob("*.dcm"))[:3])
    assert all(info.position[:2] == (-125.0, -120.0) and info.position[2] == info.z for info in infos)


# --- sequence padding: packed (radlab) or pre-padded with the LSTMs over the pads (the recipe) ----------------


def _recipe_forward(model: SequenceModel, padded: torch.Tensor) -> torch.Tensor:
    """trainlstm.py's NeuralNet.forward, written out on the model's layers."""
    e = model.embedding_dim
    h1, _ = model.lstm1(padded)
    h2, _ = model.lstm2(h1)
    skip = torch.cat([padded[..., :e], padded[..., :e]], -1)
    hidden = h1 + h2 + torch.relu(model.dense1(h1)) + torch.relu(model.dense2(h2)) + skip
    return model.out(hidden)


def _series_batch() -> tuple[SequenceDataset, dict]:
    embeddings = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    dataset = SequenceDataset(embeddings, [[0, 1, 2, 3, 4], [5, 6], [7, 8]])
    return dataset, collate_sequences([dataset[i] for i in range(3)])


def test_without_packing_the_model_is_the_recipe_on_a_pre_padded_batch():
    torch.manual_seed(0)
    model = SequenceModel(4, packing=False).eval()
    dataset, batch = _series_batch()
    pre = torch.zeros((3, 5, 12))
    for k in range(3):  # the recipe's collatefn: zeros before each series
        features = dataset[k]["features"]
        pre[k, 5 - len(features) :] = features
    with torch.no_grad():
        got = model(batch["features"], batch["lengths"])
        reference = _recipe_forward(model, pre)
    assert got.shape == (3, 5, 6)
    for k, n in enumerate(batch["lengths"].tolist()):
        assert torch.allclose(got[k, :n], reference[k, 5 - n :], atol=1e-6)


def test_both_paddings_agree_on_the_longest_series_only():
    torch.manual_seed(0)
    packed, padded = SequenceModel(4), SequenceModel(4, packing=False)
    padded.load_state_dict(packed.state_dict())
    _, batch = _series_batch()
    with torch.no_grad():
        a = packed.eval()(batch["features"], batch["lengths"])
        b = padded.eval()(batch["features"], batch["lengths"])
    assert a.shape == b.shape == (3, 5, 6)
    assert torch.allclose(a[0], b[0], atol=1e-6)  # no pads in its row
    assert not torch.allclose(a[1, :2], b[1, :2], atol=1e-4)  # the forward LSTM ran over 3 pads first


@pytest.mark.parametrize("packing", [True, False])
def test_sequence_probabilities_with_either_padding(packing):
    torch.manual_seed(0)
    embeddings = np.random.default_rng(1).normal(size=(10, 4)).astype(np.float32)
    probs = sequence_probs([SequenceModel(4, packing).eval()], embeddings, [[0, 1, 2, 3], [5, 6], [8]])
    assert probs.shape == (10, 6)
    assert np.isfinite(probs[[0, 1, 2, 3, 5, 6, 8]]).all() and np.isnan(probs[[4, 7, 9]]).all()
