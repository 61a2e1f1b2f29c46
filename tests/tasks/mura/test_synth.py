import re
from collections import Counter

import numpy as np
from PIL import Image

from radlab.tasks.mura.data import load_split
from radlab.tasks.mura.synth import synthesize_mura
from tests.conftest import csv_rows

PATH = re.compile(r"^MURA-v1\.1/(train|valid)/XR_[A-Z]+/patient\d{5}/study\d+_(positive|negative)/image\d+\.png$")


def test_official_layout_and_headerless_csvs(tiny_mura):
    base = tiny_mura / "MURA-v1.1"
    assert sorted(p.name for p in base.iterdir()) == [
        "train",
        "train_image_paths.csv",
        "train_labeled_studies.csv",
        "valid",
        "valid_image_paths.csv",
        "valid_labeled_studies.csv",
    ]
    for split in ("train", "valid"):
        paths = [row[0] for row in csv_rows(base / f"{split}_image_paths.csv")]
        assert all(PATH.match(p) for p in paths)
        assert all((tiny_mura / p).is_file() for p in paths)
        for study, label in csv_rows(base / f"{split}_labeled_studies.csv"):
            assert study.endswith("/") and label in ("0", "1")
            assert (label == "1") == study.endswith("_positive/")


def test_real_quirks_are_present(tmp_path):
    synthesize_mura(tmp_path, studies=60, seed=2, workers=1)
    paths = [tmp_path / r[0] for r in csv_rows(tmp_path / "MURA-v1.1/train_image_paths.csv")]
    modes = Counter(Image.open(p).mode for p in paths)
    assert {"L", "RGB", "LA"} <= set(modes)
    sizes = [Image.open(p).size for p in paths]
    assert max(max(s) for s in sizes) <= 512 and len(set(sizes)) > 5
    inverted = [p for p in paths if np.asarray(Image.open(p).convert("L"))[:8, :8].mean() > 128]
    assert inverted, "some images are intensity-inverted (bright background)"


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def digest(folder, seed):
        synthesize_mura(folder, studies=20, seed=seed, workers=2)
        return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    first = digest(tmp_path / "a", 4)
    assert first == digest(tmp_path / "b", 4)
    assert first != digest(tmp_path / "c", 5)


def test_every_type_in_both_splits_and_loadable(tiny_mura):
    for split in ("train", "valid"):
        table = load_split(tiny_mura, split)
        assert set(t for t in table.study_types) == {
            "ELBOW",
            "FINGER",
            "FOREARM",
            "HAND",
            "HUMERUS",
            "SHOULDER",
            "WRIST",
        }
        assert 0 < table.study_labels.mean() < 1
