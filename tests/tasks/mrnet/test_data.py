"""MRNet series as the dataset reads them: bounded before any read, and one bad series costs that plane only."""

from __future__ import annotations

import numpy as np
import pytest

from radlab.core.errors import RadlabDataError
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet.data import MAX_SERIES_SHAPE, SeriesDataset, read_series


def _sparse(path, shape):
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "|u1", "fortran_order": False, "shape": shape})
        handle.truncate(handle.tell() + int(np.prod(shape)))
    return path


@pytest.mark.parametrize("shape", [(8000, 512, 512), (MAX_SERIES_SHAPE[0] + 1, 64, 64), (20, 2048, 256)])
def test_a_series_beyond_the_plausible_shape_is_refused_before_it_is_read(tmp_path, shape):
    """Finding 12: a sparse 2 GB series (8000 x 512 x 512) passed the check, then needed about 18 GB."""
    with pytest.raises(RadlabDataError, match="implausible shape"):
        read_series(_sparse(tmp_path / "big.npy", shape))


def test_real_mrnet_shapes_are_read(tmp_path):
    assert read_series(_sparse(tmp_path / "ok.npy", (60, 256, 256))).shape == (60, 256, 256)


def test_running_out_of_memory_costs_that_plane_a_warning_not_the_prediction(tmp_path, monkeypatch):
    good = tmp_path / "good.npy"
    np.save(good, np.ones((3, 16, 16), np.uint8))

    class Exhausted(VolumeTransform):
        def __call__(self, volume):
            if volume.shape[0] == 3:
                raise MemoryError
            return super().__call__(volume)

    other = tmp_path / "other.npy"
    np.save(other, np.ones((4, 16, 16), np.uint8))
    item = SeriesDataset({"axial": [good], "coronal": [other]}, Exhausted(8))[0]
    assert item["errors"] == {"axial": f"{good}: not enough memory", "coronal": ""}
    assert item["series"]["coronal"].shape == (4, 1, 8, 8)
