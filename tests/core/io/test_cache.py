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


def test_kill_9_while_building_then_a_rerun_completes(tmp_path):
    """A build killed mid-way leaves no index that points at missing data; the next run finishes it."""
    import signal
    import subprocess
    import sys
    import time

    rng = np.random.default_rng(1)
    paths = []
    for k in range(300):
        path = tmp_path / f"n{k}.png"
        Image.fromarray(rng.integers(0, 256, (256, 256), dtype=np.uint8)).save(path)
        paths.append(str(path))
    listing = tmp_path / "paths.txt"
    listing.write_text("\n".join(paths))
    cache_dir = tmp_path / "cache"
    script = (
        "import sys; from radlab.core.io.cache import cached_image_dataset; "
        f"cached_image_dataset(open({str(listing)!r}).read().split(), {str(cache_dir)!r}, 224)"
    )
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(cache_dir.glob("prep-*/data-*.npy")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    index = next(cache_dir.glob("prep-*/index.json"), None)
    if index is not None:  # the build had finished: then the index must point at complete data
        assert (index.parent / json.loads(index.read_text())["data"]).is_file()
    rerun = cached_image_dataset(paths, cache_dir, 224)
    plain = ImageFileDataset(paths, build_image_transform(224), (1, 224, 224))
    for k in (0, 150, 299):
        assert torch.equal(rerun[k]["image"], plain[k]["image"])
    assert len(list(cache_dir.glob("prep-*/data-*.npy"))) == 1  # the killed build's data file is gone


class SizeReportingDecode(CountingDecode):
    """Returns the original size beside the array, as the DICOM decoders do."""

    def __call__(self, path):
        array = super().__call__(path)
        with Image.open(path) as image:
            return array, {"size": [image.height, image.width]}


def test_what_a_decoder_returns_beside_the_array_comes_back_per_path(tmp_path):
    paths = _images(tmp_path, 3)
    decode = SizeReportingDecode(16)
    cache = PreprocessCache(tmp_path / "cache", decode.params, decode.shape)
    cache.ensure([*paths, tmp_path / "gone.png"], decode)
    expected = [{"size": [30 + k, 40]} for k in range(3)]
    assert cache.meta == [*expected, {}]  # nothing for a missing file
    decode.calls.clear()
    reopened = PreprocessCache(tmp_path / "cache", decode.params, decode.shape)
    reopened.ensure(list(reversed(paths)), decode)
    assert decode.calls == [] and reopened.meta == list(reversed(expected))  # read from the index, in order


def test_a_rewrite_that_keeps_size_and_mtime_still_misses(tmp_path):
    """Finding 15: `cat B > A; touch -r` (cp -p, rsync -t) used to serve A's old pixels."""
    rng = np.random.default_rng(5)
    a, b = tmp_path / "a.bmp", tmp_path / "b.bmp"  # uncompressed: same shape, same file size
    for path in (a, b):
        Image.fromarray(rng.integers(0, 256, (30, 40), dtype=np.uint8)).save(path)
    assert a.stat().st_size == b.stat().st_size
    decode = CountingDecode(16)
    PreprocessCache(tmp_path / "cache", decode.params, decode.shape).ensure([a], decode)
    before = a.stat()
    a.write_bytes(b.read_bytes())
    os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns))
    decode.calls.clear()
    cache = PreprocessCache(tmp_path / "cache", decode.params, decode.shape)
    slots, _ = cache.ensure([a], decode)
    assert decode.calls == ["a.bmp"]
    np.testing.assert_array_equal(cache.array(int(slots[0])), ResizedImage(16)(str(b)))


def test_a_fifo_among_the_inputs_is_an_error_for_that_file_not_a_hang(tmp_path):
    paths = _images(tmp_path, 2)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    decode = CountingDecode(16)
    slots, errors = PreprocessCache(tmp_path / "cache", decode.params, decode.shape).ensure([*paths, fifo], decode)
    assert list(slots[:2]) == [0, 1] and slots[2] == -1 and "not a regular file (a FIFO)" in errors[2]


SHARED_CACHE_WORKER = """
import sys
from radlab.core.io.cache import PreprocessCache, ResizedImage
listing, cache_dir, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
paths = open(listing).read().split()[start:stop]
decode = ResizedImage(64)
cache = PreprocessCache(cache_dir, decode.params, decode.shape)
for _ in range(3):
    slots, errors = cache.ensure(paths, decode)
    assert (slots >= 0).all() and not any(errors), errors
    assert all(cache.array(int(s)).shape == (64, 64, 1) for s in slots)
"""


def test_processes_sharing_a_cache_extend_it_without_deleting_each_others_store(tmp_path):
    """Finding 3: each writer deleted every data file but its own, so a concurrent reader (a DDP rank, a second
    predict) died with FileNotFoundError. Four processes that each add their own files and read them back."""
    import subprocess
    import sys

    rng = np.random.default_rng(2)
    paths = []
    for k in range(160):
        path = tmp_path / f"n{k}.png"
        Image.fromarray(rng.integers(0, 256, (96, 96), dtype=np.uint8)).save(path)
        paths.append(str(path))
    listing = tmp_path / "paths.txt"
    listing.write_text("\n".join(paths))
    script = tmp_path / "worker.py"
    script.write_text(SHARED_CACHE_WORKER)
    ranges = [(0, 160), (0, 80), (40, 120), (80, 160)]
    workers = [
        subprocess.Popen([sys.executable, str(script), str(listing), str(tmp_path / "cache"), str(a), str(b)],
                         stderr=subprocess.PIPE, text=True)
        for a, b in ranges
    ]  # fmt: skip
    failures = [w.stderr.read() for w in workers if w.wait() != 0]
    assert not failures, failures[0]
    decode = ResizedImage(64)
    cache = PreprocessCache(tmp_path / "cache", decode.params, decode.shape)
    slots, _ = cache.ensure(paths, decode)
    np.testing.assert_array_equal(cache.array(int(slots[7])), decode(paths[7]))


def test_a_cold_build_hashes_each_file_once(tmp_path, monkeypatch):
    import radlab.core.io.cache as cache_module

    paths = _images(tmp_path, 5)
    hashed = []
    real = cache_module.content_key
    monkeypatch.setattr(cache_module, "content_key", lambda path: hashed.append(path) or real(path))
    decode = CountingDecode(16)
    PreprocessCache(tmp_path / "cache", decode.params, decode.shape).ensure(paths, decode)
    assert sorted(map(str, hashed)) == sorted(map(str, paths))
    hashed.clear()
    PreprocessCache(tmp_path / "cache", decode.params, decode.shape).ensure(paths, decode)
    assert hashed == []  # unchanged files: known by their identity
