import os
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files

from radlab.core.errors import RadlabDataError
from radlab.core.io.dicom import read_dicom
from radlab.core.transforms.windowing import (
    BRAIN,
    ICH_WINDOWS,
    crop_black_border,
    dicom_window,
    hounsfield,
    needs_pixel_representation_fix,
    stored_and_rescale,
    window_stack,
)


def reference_windows(ds, stored, fix):
    """A plain implementation: HU, the optional fix, each window clipped and scaled, one at a time."""
    values = stored.astype(np.float64)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if fix:
        values = values + 1000
        values[values >= 4096] -= 4096
        intercept = -1000
    hu = values * slope + intercept
    channels = []
    for window in ICH_WINDOWS:
        low, high = window.center - window.width / 2, window.center + window.width / 2
        channels.append(np.round((np.clip(hu, low, high) - low) / window.width * 255))
    return np.stack(channels, axis=-1)


def _ct_and_mr_files():
    found = []
    for path in sorted(get_testdata_files()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        if ds.get("Modality") in ("CT", "MR") and "Rows" in ds:
            found.append(path)
    return found


CT_MR = _ct_and_mr_files()


def test_the_bundled_corpus_has_ct_and_mr_files():
    assert len(CT_MR) >= 15


@pytest.mark.parametrize("path", CT_MR, ids=os.path.basename)
def test_windows_agree_with_the_plain_reference_within_one_grey_level(path):
    try:
        ds, stored = read_dicom(path)
    except RadlabDataError:
        pytest.skip("pixel data not decodable (covered by the DICOM reader's tests)")
    if stored.ndim != 2:
        pytest.skip("not a single grayscale frame")
    values, slope, intercept = stored_and_rescale(ds, stored, "auto")
    ours = window_stack(values, slope, intercept)
    expected = reference_windows(ds, stored, needs_pixel_representation_fix(ds))
    assert ours.shape == expected.shape and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("hu", [-1000, -5, 0, 40, 79, 81, 1500])
def test_pixel_representation_quirk_is_detected_and_fixed(hu):
    ds = pydicom.Dataset()
    ds.PixelRepresentation, ds.RescaleIntercept, ds.RescaleSlope = 0, 0, 1
    stored = np.full((3, 3), hu % 4096, dtype=np.uint16)  # HU wrapped as unsigned 12-bit, intercept 0
    assert needs_pixel_representation_fix(ds)
    assert hounsfield(ds, stored, "auto")[0, 0] == hu
    assert hounsfield(ds, stored, "never")[0, 0] == hu % 4096
    normal = pydicom.Dataset()
    normal.PixelRepresentation, normal.RescaleIntercept, normal.RescaleSlope = 1, -1024, 1
    assert not needs_pixel_representation_fix(normal)
    assert hounsfield(normal, np.full((2, 2), hu + 1024, np.int16), "auto")[0, 0] == hu


def test_window_values_hand_worked():
    stored = np.array([[-100, 0, 40, 80, 500]], dtype=np.int16)
    out = window_stack(stored, 1.0, 0.0, (BRAIN,))
    assert out[..., 0].tolist() == [[0, 0, 128, 255, 255]]  # brain 40/80 -> [0, 80] HU
    floats = window_stack(stored.astype(np.float32), 1.0, 0.0, (BRAIN,), dtype="float32")
    assert floats[..., 0].tolist() == [[0.0, 0.0, 0.5, 1.0, 1.0]]


def test_lookup_table_path_equals_the_direct_path():
    rng = np.random.default_rng(0)
    stored = rng.integers(-1024, 3000, (128, 128)).astype(np.int16)
    assert np.array_equal(window_stack(stored, 1.0, -24.0), window_stack(stored.astype(np.float64), 1.0, -24.0))


def test_multi_valued_window_tags_take_the_first_value():
    ds = pydicom.Dataset()
    ds.WindowCenter, ds.WindowWidth = [40, 300], [80, 1500]
    assert (dicom_window(ds).center, dicom_window(ds).width) == (40, 80)
    single = pydicom.Dataset()
    single.WindowCenter, single.WindowWidth = 36, 80
    assert dicom_window(single).center == 36
    assert dicom_window(pydicom.Dataset()) is None


def test_black_border_crop_pastes_top_left_into_a_square():
    image = np.zeros((10, 12, 3), np.uint8)
    image[2:5, 3:9] = 7
    out = crop_black_border(image)
    assert out.shape == (6, 6, 3)
    assert (out[:3, :6] == 7).all() and (out[3:] == 0).all()
    assert crop_black_border(np.zeros((4, 4, 3), np.uint8)).shape == (4, 4, 3)


@pytest.mark.parametrize(
    ("dtype", "low", "high", "slope", "intercept", "border"),
    [
        (np.int16, -2000, 2500, 1.0, 0.0, 7),
        (np.uint16, 0, 4095, 1.0, -1024.0, 0),
        (np.int32, -1024, 3071, 0.5, 10.0, 20),
        (np.uint16, 0, 200, 1.0, -1024.0, 5),  # all black in every window
        (np.float32, -1000, 1000, 1.0, 0.0, 3),  # not integers: the plain path
    ],
)
@pytest.mark.parametrize("crop", [True, False])
def test_windowed_square_equals_the_plain_composition(dtype, low, high, slope, intercept, border, crop):
    from radlab.core.transforms.windowing import border_box, windowed_square

    rng = np.random.default_rng(0)
    stored = np.full((64, 80), low, dtype=dtype)
    stored[border : 64 - border // 2, border + 3 : 80 - border] = rng.integers(
        low, high, (64 - border - border // 2, 77 - 2 * border)
    )
    fast, box = windowed_square(stored, slope, intercept, ICH_WINDOWS, crop)
    stack = window_stack(stored, slope, intercept, ICH_WINDOWS)
    expected = crop_black_border(stack) if crop else stack
    np.testing.assert_array_equal(fast, expected)
    assert box == (border_box(stack) if crop else None)
