import hashlib

import pytest

from radlab.core.provenance import manifest
from radlab.core.provenance.manifest import data_manifest, sha256_file


def _tree(root, files):
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def test_images_are_counted_and_label_files_hashed(tmp_path):
    _tree(
        tmp_path,
        {
            "MURA/train_labeled.csv": b"a/,1\n",
            "MURA/train/p1/image1.png": b"png",
            "MURA/train/p1/image2.PNG": b"png",
            "MURA/valid/x.dcm": b"dcm",
            "MURA/notes.txt": b"hello",
            "MURA/README": b"no suffix",
            ".hidden/skip.csv": b"x",
            "MURA/.DS_Store": b"x",
        },
    )
    found = data_manifest(tmp_path)
    assert found["files"] == {"": 1, ".csv": 1, ".dcm": 1, ".png": 2, ".txt": 1}
    assert found["total_files"] == 6 and found["truncated"] is False and found["root"] == str(tmp_path)
    assert found["label_files"] == {
        "MURA/notes.txt": {"bytes": 5, "sha256": hashlib.sha256(b"hello").hexdigest()},
        "MURA/train_labeled.csv": {"bytes": 5, "sha256": hashlib.sha256(b"a/,1\n").hexdigest()},
    }


@pytest.mark.parametrize(("limit", "total", "truncated"), [(2, 2, True), (3, 3, False), (10, 3, False)])
def test_the_walk_stops_at_its_limit_and_says_so(tmp_path, monkeypatch, limit, total, truncated):
    _tree(tmp_path, {f"{k}.png": b"x" for k in range(3)})
    monkeypatch.setattr(manifest, "MAX_ENTRIES", limit)
    found = data_manifest(tmp_path)
    assert (found["total_files"], found["truncated"]) == (total, truncated)


def test_a_label_file_too_large_to_hash_is_counted_not_hashed(tmp_path, monkeypatch):
    _tree(tmp_path, {"big.csv": b"0123456789"})
    monkeypatch.setattr(manifest, "MAX_LABEL_BYTES", 9)
    assert data_manifest(tmp_path)["label_files"] == {"big.csv": {"bytes": 10, "sha256": None}}


def test_sha256_file_reads_in_blocks(tmp_path):
    data = bytes(range(256)) * 9000  # over two 1 MiB blocks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
