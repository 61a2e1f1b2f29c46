"""The preprocessing cache: exact arrays, keyed by content and parameters, errors cached, crash-safe."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from radlab.core.io.cache import PreprocessCache, ResizedImage, cached_image_dataset
from radlab.core.io.dataset import ImageFileDataset
from radlab.core.transforms import build_image_transform


def _images(folder, count, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(count):
        path = folder / f"img{k}.png"
        Image.fromarray(rng.integers(0, 256, (30 + k, 40), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


class CountingDecode(ResizedImage):
    calls: list[str]

    def __init__(self, size):
        super().__init__(size)
        self.calls = []

    def __call__(self, path):
        self.calls.append(os.path.basename(path))
        return super().__call__(path)


@pytest.mark.parametrize("resize", ["stretch", "pad"])
def test_cached_items_equal_decoding_every_time(tmp_path, resize):
    paths = _images(tmp_path, 5)
    transform = build_image_transform(24, resize=resize)
    plain = ImageFileDataset(paths, transform, transform.output_shape)
    cached = cached_image_dataset(paths, tmp_path / "cache", 24, resize)
    for k in range(len(paths)):
        assert torch.equal(plain[k]["image"], cached[k]["image"]) and cached[k]["error"] == ""


def test_files_are_decoded_once_and_changes_miss(tmp_path):
    paths = _images(tmp_path, 4)
    decode = CountingDecode(16)
    cache = PreprocessCache(tmp_path / "cache", decode.params, decode.shape)
    cache.ensure(paths, decode)
    assert sorted(decode.calls) == ["img0.png", "img1.png", "img2.png", "img3.png"]
    decode.calls.clear()
    cache.ensure(paths, decode)
    assert decode.calls == []  # all hits
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(paths[2])  # new content under the same name
    slots, _ = cache.ensure(paths, decode)
    assert decode.calls == ["img2.png"]
    np.testing.assert_array_equal(cache.array(int(slots[2])), np.zeros((16, 16, 1), dtype=np.uint8))
    other = CountingDecode(20)  # other parameters: another store
    PreprocessCache(tmp_path / "cache", other.params, other.shape).ensure(paths, other)
    assert len(other.calls) == 4 and len(list((tmp_path / "cache").iterdir())) == 2


def test_identical_files_share_one_slot_and_errors_are_cached(tmp_path):
    paths = _images(tmp_path, 2)
    twin = tmp_path / "twin.png"
    twin.write_bytes(paths[0].read_bytes())
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG nope")
    decode = CountingDecode(16)
    cache = PreprocessCache(tmp_path / "cache", decode.params, decode.shape)
    slots, errors = cache.ensure([*paths, twin, broken, tmp_path / "gone.png"], decode)
    assert slots[0] == slots[2] and slots[3] == -1 and slots[4] == -1
    assert "broken.png" in errors[3] and "gone.png" in errors[4] and errors[:3] == ["", "", ""]
    decode.calls.clear()
    _, again = cache.ensure([broken], decode)
    assert decode.calls == [] and again == [errors[3]]


def test_an_interrupted_build_leaves_the_previous_store_intact(tmp_path):
    paths = _images(tmp_path, 3)
    decode = ResizedImage(16)
    cache = PreprocessCache(tmp_path / "cache", decode.params, decode.shape)
    slots, _ = cache.ensure(paths[:2], decode)
    before = [cache.array(int(s)).copy() for s in slots]
    index_before = (cache.root / "index.json").read_text()

    def dies(path):
        raise KeyboardInterrupt  # as a kill would, mid-build

    with pytest.raises(KeyboardInterrupt):
        PreprocessCache(tmp_path / "cache", decode.params, decode.shape).ensure(paths, dies)
    assert (cache.root / "index.json").read_text() == index_before
    data_file = json.loads(index_before)["data"]
    assert (cache.root / data_file).is_file()
    fresh = PreprocessCache(tmp_path / "cache", decode.params, decode.shape)
    slots, _ = fresh.ensure(paths[:2], decode)
    for k, slot in enumerate(slots):
        np.testing.assert_array_equal(fresh.array(int(slot)), before[k])
