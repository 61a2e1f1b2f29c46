import numpy as np
from PIL import Image

from radlab.core.io.dataset import ImageFileDataset
from radlab.core.transforms import build_image_transform


def test_unreadable_file_becomes_a_flagged_black_sample(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.full((10, 10), 200, np.uint8)).save(good)
    transform = build_image_transform(8)
    dataset = ImageFileDataset([good, tmp_path / "missing.png"], transform, transform.output_shape)
    ok, bad = dataset[0], dataset[1]
    assert ok["error"] == "" and int(ok["image"].min()) == 200
    assert "missing.png: file not found" in bad["error"]
    assert tuple(bad["image"].shape) == (1, 8, 8) and int(bad["image"].max()) == 0
