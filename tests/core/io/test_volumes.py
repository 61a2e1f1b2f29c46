import numpy as np
import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.io.volumes import read_volume


def _save(tmp_path, array, name="v.npy", **kwargs):
    path = tmp_path / name
    np.save(path, array, **kwargs)
    return path


def test_reads_a_uint8_volume(tmp_path):
    volume = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert (read_volume(_save(tmp_path, volume)) == volume).all()


class _Payload:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(_Payload.marker),))


def test_a_pickled_object_array_is_refused_and_not_executed(tmp_path):
    _Payload.marker = str(tmp_path / "pwned")
    path = _save(tmp_path, np.array([_Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(RadlabDataError, match=r"v\.npy"):
        read_volume(path)
    assert not (tmp_path / "pwned").exists()


def _huge_header(tmp_path):
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (100000, 100000, 100000), }"
    header = header + " " * (118 - len(header)) + "\n"
    path = tmp_path / "huge.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\x00" * 64)
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: _save(p, np.zeros((2, 3, 4), np.float32)), "expected uint8"),
        (lambda p: _save(p, np.zeros((3, 4), np.uint8)), "3-D volume"),
        (lambda p: p / "missing.npy", "file not found"),
        (lambda p: _save(p, np.zeros((0, 4, 4), np.uint8)), "implausible shape"),
        (_huge_header, "huge.npy"),
    ],
)
def test_bad_volumes_are_data_errors(tmp_path, make, reason):
    with pytest.raises(RadlabDataError, match=reason):
        read_volume(make(tmp_path))


@pytest.mark.parametrize("keep", [0, 10, 100])
def test_truncated_files_are_data_errors(tmp_path, keep):
    path = _save(tmp_path, np.ones((4, 16, 16), np.uint8))
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(RadlabDataError, match=r"v\.npy"):
        read_volume(path)


def _sparse(tmp_path, shape):
    """A volume that declares `shape` (2 GB for MRNet's finding) in a sparse file: no disk, no memory."""
    path = tmp_path / "sparse.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "|u1", "fortran_order": False, "shape": shape})
        handle.truncate(handle.tell() + int(np.prod(shape)))
    return path


@pytest.mark.parametrize(
    ("shape", "max_shape", "reason"),
    [
        ((8000, 512, 512), None, "implausible shape"),  # 2 GB: passed the old 2**31 voxel bound
        ((300, 64, 64), (256, 1024, 1024), r"at most 256 x 1024 x 1024"),
        ((8, 2048, 64), (256, 1024, 1024), "implausible shape"),
    ],
)
def test_implausible_shapes_are_refused_before_any_read(tmp_path, shape, max_shape, reason):
    """Finding 12: the sparse 2 GB volume used to be read, then copied to float32 (18 GB)."""
    with pytest.raises(RadlabDataError, match=reason):
        read_volume(_sparse(tmp_path, shape), max_shape=max_shape)


def test_a_volume_within_the_bounds_is_read(tmp_path):
    assert read_volume(_sparse(tmp_path, (4, 8, 8)), max_shape=(256, 1024, 1024)).shape == (4, 8, 8)


def test_running_out_of_memory_is_a_data_error_naming_the_file(tmp_path, monkeypatch):
    path = _save(tmp_path, np.ones((2, 4, 4), np.uint8))

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np, "array", no_memory)
    with pytest.raises(RadlabDataError, match=r"v\.npy: not enough memory"):
        read_volume(path)
