"""Property tests for the four challenges' CSV readers: damaged files give radlab's data error (naming the
file, and the line where there is one), never another exception."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radlab.core.errors import RadlabDataError
from radlab.tasks.ich import formats as ich
from radlab.tasks.mrnet import formats as mrnet
from radlab.tasks.mura import formats as mura
from radlab.tasks.pneumonia import formats as pneumonia
from tests.core.io.test_fuzz import mutations

STUDY = "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/"
PATIENT = "5f82c2d9-cfeb-4fa3-a1d7-d982f8bd1045"
SEEDS: dict[str, tuple[Callable[[Path], object], str]] = {
    "mura image paths": (mura.read_image_paths, f"{STUDY}image1.png\n{STUDY}image2.png\n"),
    "mura labels": (mura.read_labeled_studies, f"{STUDY},1\n{STUDY.replace('11185', '11186')},0\n"),
    "mura predictions": (mura.read_predictions, f"{STUDY},1\n"),
    "mura probabilities": (mura.read_probabilities, f"{STUDY},0.25\n"),
    "mrnet paths": (
        mrnet.read_exam_paths,
        "".join(f"MRNet-v1.0/valid/{p}/0150.npy\n" for p in ("sagittal", "axial", "coronal")),
    ),
    "mrnet labels": (mrnet.read_task_labels, "1130,0\n1131,1\n"),
    "mrnet predictions": (mrnet.read_predictions, "0.1,0.2,0.3\n0.9,0.8,0.7\n"),
    "pneumonia boxes": (
        pneumonia.read_box_labels,
        f"patientId,x,y,width,height,Target\n{PATIENT},264.0,152.0,213.0,379.0,1\nabc,,,,,0\n",
    ),
    "pneumonia classes": (pneumonia.read_class_info, f"patientId,class\n{PATIENT},Lung Opacity\nabc,Normal\n"),
    "pneumonia submission": (
        pneumonia.read_submission,
        f"patientId,PredictionString\n{PATIENT},0.5 10 20 30 40 0.3 1 2 3 4\nabc,\n",
    ),
    "ich labels": (ich.read_labels, "ID,Label\n" + "".join(f"ID_47660010a_{s},0\n" for s in ich.SUBTYPES)),
    "ich submission": (ich.read_submission, "ID,Label\n" + "".join(f"ID_47660010a_{s},0.5\n" for s in ich.SUBTYPES)),
}
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_the_seed_file_reads(name):
    reader, text = SEEDS[name]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "seed.csv"
        path.write_text(text)
        assert reader(path) is not None


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_damaged_files_give_only_data_errors(name):
    reader, text = SEEDS[name]

    @FUZZ
    @given(data=mutations(text.encode()) | st.binary(max_size=200))
    def check(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "case.csv"
            path.write_bytes(data)
            try:
                reader(path)
            except RadlabDataError as error:
                assert error.path == str(path) and error.reason

    check()
