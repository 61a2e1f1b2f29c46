import numpy as np
import pydicom

from radlab.core.errors import RadlabDataError
from radlab.core.io.dicom import read_dicom
from radlab.core.transforms.windowing import hounsfield, needs_pixel_representation_fix
from radlab.tasks.ich.formats import TRAIN_CSV, TRAIN_IMAGES, read_labels
from radlab.tasks.ich.synth import synthesize_ich


def test_real_tags_and_quirks(tmp_path):
    synthesize_ich(tmp_path, series=12, seed=4, size=32, workers=1)
    images, labels = read_labels(tmp_path / TRAIN_CSV)
    assert (labels[:, 5] == labels[:, :5].max(axis=1)).all()  # any = union
    files = sorted((tmp_path / TRAIN_IMAGES).glob("*.dcm"))
    assert {p.stem for p in files} == set(images)
    quirky, multi_window, corrupt = 0, 0, 0
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.SOPInstanceUID == path.stem and len(ds.ImagePositionPatient) == 3
        multi_window += isinstance(ds.WindowCenter, pydicom.multival.MultiValue)
        try:
            ds, stored = read_dicom(path)
        except RadlabDataError:
            corrupt += 1
            continue
        if needs_pixel_representation_fix(ds):
            quirky += 1
            assert hounsfield(ds, stored, "auto").min() == -1000  # air comes back as air
            assert hounsfield(ds, stored, "never").min() > 0  # unfixed, air would read as dense
    assert quirky > 0 and multi_window > 0 and corrupt == 1
    assert np.isin(labels, (0, 1)).all()
