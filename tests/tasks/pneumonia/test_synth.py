import pydicom

from radlab.tasks.pneumonia.formats import (
    CLASS_INFO,
    TEST_IMAGES,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    read_box_labels,
    read_class_info,
)
from radlab.tasks.pneumonia.synth import TEST_TRUTH, synthesize_pneumonia


def test_official_layout_jpeg_baseline_dicoms_and_label_files(tiny_pneumonia):
    labels = read_box_labels(tiny_pneumonia / TRAIN_LABELS)
    classes = read_class_info(tiny_pneumonia / CLASS_INFO)
    assert set(labels) == set(classes) == {p.stem for p in (tiny_pneumonia / TRAIN_IMAGES).glob("*.dcm")}
    for patient, boxes in labels.items():
        assert (len(boxes) > 0) == (classes[patient] == "Lung Opacity")
    rows = (tiny_pneumonia / CLASS_INFO).read_text().splitlines()[1:]
    assert len(rows) == sum(max(1, len(b)) for b in labels.values())  # one class row per label row, as real
    test = sorted((tiny_pneumonia / TEST_IMAGES).glob("*.dcm"))
    assert test and set(read_box_labels(tiny_pneumonia / TEST_TRUTH)) == {p.stem for p in test}
    ds = pydicom.dcmread(test[0])
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit
    assert (ds.PatientID, ds.PhotometricInterpretation, ds.Rows) == (test[0].stem, "MONOCHROME2", 128)


def test_same_seed_same_bytes(tmp_path):
    def digest(folder):
        synthesize_pneumonia(folder, patients=8, seed=1, size=64, workers=2)
        return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
