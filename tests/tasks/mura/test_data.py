import numpy as np
import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.transforms import build_image_transform
from radlab.tasks.mura.data import MuraDataset, MuraSplit, class_weights, group_studies, load_split
from radlab.tasks.mura.formats import ImagePath


def _split(types_and_labels):
    images, study_labels = [], []
    for s, (kind, label, n) in enumerate(types_and_labels):
        images += [ImagePath(0, f"MURA-v1.1/train/XR_{kind}/p/study{s}/image{i}.png") for i in range(n)]
        study_labels.append(label)
    groups = group_studies(images)
    return MuraSplit(groups.images, groups.image_study, groups.studies, np.array(study_labels))


def test_class_weights_per_type_from_image_counts():
    # WRIST: 3 abnormal + 1 normal image -> w_pos = 1/4, w_neg = 3/4; HAND: 1 abnormal + 1 normal
    split = _split([("WRIST", 1, 3), ("WRIST", 0, 1), ("HAND", 1, 1), ("HAND", 0, 1)])
    weights = class_weights(split, "per_type")
    assert weights[6].tolist() == [0.75, 0.25]
    assert weights[3].tolist() == [0.5, 0.5]
    assert weights[0].tolist() == pytest.approx([4 / 6, 2 / 6])  # ELBOW absent: global counts
    assert class_weights(split, "none").tolist() == np.ones((8, 2)).tolist()


def test_group_studies_in_first_seen_order():
    images = [ImagePath(i, p) for i, p in enumerate(["a/s2/1.png", "a/s1/1.png", "a/s2/2.png"])]
    groups = group_studies(images)
    assert groups.studies == ["a/s2/", "a/s1/"] and groups.image_study.tolist() == [0, 1, 0]


def test_an_image_of_an_unlabelled_study_names_its_line(tiny_mura, tmp_path):
    import shutil

    shutil.copytree(tiny_mura, tmp_path / "copy")
    labels = tmp_path / "copy/MURA-v1.1/valid_labeled_studies.csv"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(RadlabDataError, match=r"valid_image_paths\.csv:1: study .* has no label"):
        load_split(tmp_path / "copy", "valid")


def test_dataset_items(tiny_mura):
    dataset = MuraDataset(tiny_mura, "valid", build_image_transform(24))
    item = dataset[0]
    assert item["image"].shape == (1, 24, 24) and item["error"] == ""
    assert item["label"] in (0.0, 1.0) and 0 <= item["type"] < 7
    assert len(dataset) == len(dataset.split.images)
