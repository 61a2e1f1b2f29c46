import os
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files

from radlab.core.errors import RadlabDataError
from radlab.core.io.dicom import modality_values, read_dicom, read_dicom_image


def bundled(name: str) -> str:
    """A file of pydicom's bundled test data (never the network: get_testdata_file would download)."""
    matches = [f for f in get_testdata_files() if os.path.basename(f) == name]
    assert matches, f"{name} is not bundled with this pydicom"
    return matches[0]


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("SC_rgb_dcmtk_+eb+cy+n1.dcm", "JPEG Baseline (Process 1)"),
        ("SC_rgb_jpeg_gdcm.dcm", "JPEG Lossless, Non-Hierarchical, First-Order Prediction"),
        ("JPEG2000.dcm", "JPEG 2000 Image Compression"),
        ("MR_small_jp2klossless.dcm", "JPEG 2000 Image Compression (Lossless Only)"),
        ("MR_small_RLE.dcm", "RLE Lossless"),
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless Image Compression"),
    ],
)
def test_compressed_transfer_syntaxes_decode(name, syntax):
    ds, pixels = read_dicom(bundled(name))
    assert ds.file_meta.TransferSyntaxUID.name.startswith(syntax)
    assert pixels.size > 0
    assert read_dicom_image(bundled(name)).dtype == np.uint8


@pytest.mark.parametrize(
    "compressed", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"]
)
def test_lossless_syntaxes_give_the_uncompressed_pixels(compressed):
    _, reference = read_dicom(bundled("MR_small.dcm"))
    _, decoded = read_dicom(bundled(compressed))
    assert np.array_equal(reference, decoded)


def test_rescale_slope_and_intercept_give_hounsfield_units():
    ds, pixels = read_dicom(bundled("CT_small.dcm"))
    assert float(ds.RescaleIntercept) == -1024
    values = modality_values(ds, pixels)
    np.testing.assert_allclose(values, pixels.astype(np.float32) * float(ds.RescaleSlope) - 1024)


def _write(tmp_path, pixels, **tags):
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.tobytes()
    path = tmp_path / "x.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_monochrome1_inversion(tmp_path, photometric):
    pixels = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    image = read_dicom_image(_write(tmp_path, pixels, PhotometricInterpretation=photometric))
    expected = 255 - pixels if photometric == "MONOCHROME1" else pixels
    assert image.tolist() == expected.tolist()


def test_twelve_bit_data_is_stretched_to_eight_bits(tmp_path):
    pixels = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    image = read_dicom_image(_write(tmp_path, pixels, BitsStored=12, HighBit=11))
    assert image.tolist() == [[0, 64], [128, 255]]


def test_preamble_less_files_are_accepted(tmp_path):
    path = _write(tmp_path, np.full((4, 4), 7, np.uint8))
    stripped = tmp_path / "raw.dcm"
    stripped.write_bytes(path.read_bytes()[132:])
    assert read_dicom_image(stripped).tolist() == [[7] * 4] * 4


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p / "missing.dcm", "file not found"),
        (lambda p: _text_file(p / "t.dcm"), "not a DICOM file"),
        (lambda p: _write(p, np.zeros((4, 4), np.uint8), Rows=60000, Columns=60000), "more than radlab decodes"),
        (lambda p: _truncate(_write(p, np.zeros((64, 64), np.uint8))), "cannot decode pixel data"),
        (lambda p: bundled("rtstruct.dcm"), "not a DICOM file"),
        (lambda p: bundled("badVR.dcm"), "invalid NumberOfFrames"),
    ],
)
def test_bad_files_raise_one_data_error(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(RadlabDataError, match=reason) as caught:
        read_dicom_image(path)
    assert str(path) in str(caught.value)


def _text_file(path):
    path.write_text("hello")
    return path


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-1000])
    return path


def test_every_bundled_file_decodes_or_is_refused_with_a_reason():
    decoded, refused = 0, 0
    for path in get_testdata_files():
        try:
            image = read_dicom_image(path)
        except RadlabDataError as exc:
            assert exc.path == str(path) and exc.reason
            refused += 1
        else:
            assert image.dtype == np.uint8 and image.ndim == 2
            decoded += 1
    assert decoded >= 85 and decoded + refused == len(get_testdata_files())


@pytest.mark.parametrize(
    ("tag", "written"),
    [("RescaleSlope", b"abc     "), ("RescaleSlope", b"nan     "), ("RescaleIntercept", b"inf     ")],
)
def test_a_rescale_that_is_not_a_finite_number_is_a_data_error_naming_the_file(tmp_path, tag, written):
    """Finding 8: `abc` crashed the ICH loader (a traceback, no output); NaN and inf gave all-black or all-white
    images that were predicted as ordinary slices. Made as the finding made them: a valid value, byte-replaced."""
    from radlab.core.transforms.windowing import hounsfield

    tags = {"RescaleSlope": "1", "RescaleIntercept": "-1024", tag: "7.777777"}
    path = _write(tmp_path, np.full((8, 8), 1000, np.uint16), **tags)
    path.write_bytes(path.read_bytes().replace(b"7.777777", written))
    with pytest.raises(RadlabDataError, match=rf"x\.dcm: {tag} is not a finite number"):
        read_dicom_image(path)
    ds, stored = read_dicom(path)
    with pytest.raises(RadlabDataError, match=rf"x\.dcm: {tag} is not a finite number"):
        hounsfield(ds, stored)
