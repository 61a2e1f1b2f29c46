"""A synthetic RSNA Pneumonia set: JPEG-Baseline DICOMs, the two label CSVs, train and test folders.

Chest-like images (thorax, two lung fields, ribs, heart, spine, diaphragm). "Lung Opacity" patients have one
or two hazy opacities inside the lungs, each with its box; "No Lung Opacity / Not Normal" patients show an
enlarged heart, a pleural effusion or a line, without boxes; "Normal" patients show none of these. The
class info file repeats a patient once per label row, as the real one does. Test patients go to
stage_2_test_images/ and their truth to synthetic_test_labels.csv (not part of the official layout), so a
submission can be scored. Each patient is drawn from its own seed. `DEMO` is the round trip `radlab demo
--task pneumonia` (and the contract tests) run on it: train on the train folder, predict the test folder.
"""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFilter
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

from radlab.core.demo import DemoSpec, Evaluation
from radlab.core.io.atomic import atomic_path
from radlab.core.io.dicom import list_dicom_folder
from radlab.core.io.synthetic import held_out_count, write_csv_rows, write_each
from radlab.tasks.pneumonia.formats import (
    CLASS_HEADER,
    CLASSES,
    LABELS_HEADER,
    TEST_IMAGES,
    TRAIN_IMAGES,
    read_submission,
)

TEST_TRUTH = "synthetic_test_labels.csv"
_CLASS_SHARE = (0.44, 0.33, 0.23)  # not normal, normal, opacity (roughly the real 11,821 / 8,851 / 6,012)


@dataclass
class _Patient:
    patient_id: str
    split: str
    category: int
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)


def synthesize_pneumonia(
    out: str | Path,
    patients: int = 400,
    seed: int = 0,
    size: int = 1024,
    test_fraction: float = 0.2,
    workers: int | None = None,
) -> dict[str, dict[str, int]]:
    """Write the set into `out`; `size` is the image side (the real images are 1024)."""
    n_test = held_out_count(patients, test_fraction, least=4, held_out_least=1, what="patients")
    out, rng = Path(out), np.random.default_rng(seed)
    plan = []
    for index in range(patients):
        category = index % 3 if index < 3 else int(rng.choice(3, p=_CLASS_SHARE))
        patient_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        plan.append(_Patient(patient_id, "test" if index >= patients - n_test else "train", category))
    drawn = write_each(_write_patient, out, plan, seed, workers, size, chunksize=8)
    summary = {}
    for split, labels_name in (("train", "stage_2_train_labels.csv"), ("test", TEST_TRUTH)):
        chosen = [p for p in drawn if p.split == split]
        label_rows: list[list[object]] = [list(LABELS_HEADER)]
        class_rows: list[list[object]] = [list(CLASS_HEADER)]
        for patient in chosen:
            rows = [
                [patient.patient_id, f"{x:.1f}", f"{y:.1f}", f"{w:.1f}", f"{h:.1f}", 1] for x, y, w, h in patient.boxes
            ]
            label_rows += rows or [[patient.patient_id, "", "", "", "", 0]]
            class_rows += [[patient.patient_id, CLASSES[patient.category]]] * max(1, len(rows))
        write_csv_rows(out / labels_name, label_rows)
        if split == "train":
            write_csv_rows(out / "stage_2_detailed_class_info.csv", class_rows)
        summary[split] = {
            "patients": len(chosen),
            "opacity": sum(p.category == 2 for p in chosen),
            "boxes": sum(len(p.boxes) for p in chosen),
        }
    return summary


def _write_patient(out: Path, patient: _Patient, seed: np.random.SeedSequence, size: int) -> _Patient:
    rng = np.random.default_rng(seed)
    pixels, boxes = render_chest(size, patient.category, rng)
    patient.boxes = boxes
    folder = TRAIN_IMAGES if patient.split == "train" else TEST_IMAGES
    write_jpeg_dicom(out / folder / f"{patient.patient_id}.dcm", pixels, patient.patient_id, rng)
    return patient


def render_chest(size: int, category: int, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """A (size, size) uint8 chest radiograph and its opacity boxes (x, y, w, h) in pixels."""
    s = float(size)
    img = Image.new("L", (size, size), 8)
    draw = ImageDraw.Draw(img)
    cx = s * rng.uniform(0.47, 0.53)
    top, bottom = s * rng.uniform(0.1, 0.16), s * rng.uniform(0.8, 0.9)
    draw.rounded_rectangle([s * 0.12, top - s * 0.05, s * 0.88, s * 0.98], radius=s * 0.12, fill=120)
    lungs = []
    for side in (-1, 1):
        lx0 = cx + side * s * 0.05 if side > 0 else cx - s * rng.uniform(0.33, 0.37)
        lx1 = cx + s * rng.uniform(0.33, 0.37) if side > 0 else cx - side * s * -0.05
        box = [min(lx0, lx1), top, max(lx0, lx1), bottom]
        draw.ellipse(box, fill=45)
        lungs.append(box)
    for k in range(9):
        y = top + (bottom - top) * (k + 0.5) / 9
        for x0, _, x1, _ in lungs:
            draw.arc(
                [x0 - s * 0.05, y - s * 0.06, x1 + s * 0.05, y + s * 0.06], 200, 340, fill=95, width=max(2, size // 120)
            )
    heart = s * (rng.uniform(0.24, 0.3) if category == 0 and rng.random() < 0.5 else rng.uniform(0.15, 0.19))
    draw.ellipse([cx - heart * 0.4, bottom - heart * 1.5, cx + heart * 1.1, bottom + heart * 0.1], fill=150)
    draw.rectangle([cx - s * 0.035, 0, cx + s * 0.035, s], fill=165)
    draw.ellipse([s * 0.1, bottom - s * 0.02, s * 0.9, bottom + s * 0.25], fill=140)
    if category == 0 and rng.random() < 0.5:
        x0, _, x1, y1 = lungs[int(rng.integers(2))]
        draw.chord([x0, y1 - s * 0.2, x1, y1 + s * 0.05], 180, 360, fill=130)
    if category == 0 and rng.random() < 0.4:
        draw.line([(cx + s * 0.02, 0), (cx + s * 0.05, s * 0.6)], fill=230, width=max(2, size // 200))
    pixels = np.asarray(img.filter(ImageFilter.GaussianBlur(s * 0.006)), dtype=np.float32)
    pixels += rng.standard_normal((size, size), dtype=np.float32) * 7.0
    for _ in range(int(rng.integers(0, 3))):  # vessels and overlapping shadows: opacity-like, no box
        _opacity(pixels, lungs[int(rng.integers(2))], s * 0.45, rng, amplitude=rng.uniform(20, 40))
    boxes = []
    if category == 2:
        count = 1 if rng.random() < 0.45 else 2
        for lung in rng.permutation(2)[:count]:
            boxes.append(_opacity(pixels, lungs[lung], s, rng))
    gamma = rng.uniform(0.85, 1.15)
    pixels = 255.0 * (np.clip(pixels, 0, 255) / 255.0) ** gamma
    return np.clip(pixels, 0, 255).astype(np.uint8), boxes


def _opacity(
    pixels: np.ndarray, lung: list[float], s: float, rng: np.random.Generator, amplitude: float | None = None
) -> tuple[float, ...]:
    """Add a hazy opacity inside a lung; returns its box as a reader would draw it (loosely)."""
    x0, y0, x1, y1 = lung
    w = s * rng.uniform(0.14, 0.24)
    h = s * rng.uniform(0.18, 0.32)
    cx = rng.uniform(x0 + w * 0.5, max(x0 + w * 0.5 + 1, x1 - w * 0.5))
    cy = rng.uniform(y0 + h * 0.5 + s * 0.05, max(y0 + h * 0.5 + s * 0.05 + 1, y1 - h * 0.5))
    bx0, by0 = max(0, int(cx - w / 2)), max(0, int(cy - h / 2))
    bx1, by1 = min(pixels.shape[1], int(cx + w / 2)), min(pixels.shape[0], int(cy + h / 2))
    yy, xx = np.mgrid[by0:by1, bx0:bx1].astype(np.float32)
    blob = np.exp(-(((xx - cx) / (w * 0.32)) ** 2 + ((yy - cy) / (h * 0.32)) ** 2))
    texture = 1.0 + 0.35 * rng.standard_normal(blob.shape).astype(np.float32)
    pixels[by0:by1, bx0:bx1] += (rng.uniform(30, 60) if amplitude is None else amplitude) * blob * texture
    jitter = rng.uniform(-0.12, 0.12, 4) * np.array([w, h, w, h])
    x0, y0 = max(0.0, bx0 + jitter[0]), max(0.0, by0 + jitter[1])
    x1, y1 = min(s, bx1 + jitter[2]), min(s, by1 + jitter[3])
    return (float(round(x0)), float(round(y0)), float(round(x1 - x0)), float(round(y1 - y0)))


def write_jpeg_dicom(path: Path, pixels: np.ndarray, patient_id: str, rng: np.random.Generator) -> None:
    """An 8-bit MONOCHROME2 chest radiograph as a JPEG Baseline (Process 1) DICOM, like the challenge's."""
    buffer = BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="JPEG", quality=92)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[patient_id, "sop"])
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[patient_id, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[patient_id, "series"])
    ds.PatientID = patient_id
    ds.PatientName = patient_id
    ds.PatientSex = "M" if rng.random() < 0.55 else "F"
    with warnings.catch_warnings():  # the challenge's files hold ages such as '51', not the AS form '051Y'
        warnings.simplefilter("ignore", UserWarning)
        ds.PatientAge = str(int(rng.integers(18, 90)))
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA" if rng.random() < 0.55 else "AP"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [0.143, 0.143]
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, durable=False) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


class PneumoniaDemo(DemoSpec):
    what = "400 patients"
    output_name = "submission.csv"
    reference = "top private leaderboard about 0.25"

    def synth(self, data: Path, seed: int, patients: int = 400, size: int = 256, **options: Any) -> str:
        counts = synthesize_pneumonia(data, patients=patients, seed=seed, size=size, **options)
        return f"train {counts['train']}, test {counts['test']}"

    def predict_args(self, data: Path, run: Path, output: Path) -> list[str]:
        return [str(data / TEST_IMAGES), str(output)]

    def inputs(self, data: Path) -> list[Path]:
        return list_dicom_folder(data / TEST_IMAGES)

    def evaluate(self, data: Path, output: Path, metrics: dict[str, Any]) -> Evaluation:
        from radlab.tasks.pneumonia.evaluate import evaluate_files, results_table

        scores = evaluate_files(data / TEST_TRUTH, output)
        return Evaluation(scores, results_table(metrics, scores), {"validation": metrics, "test": scores})

    def scores(self, output: Path) -> np.ndarray:
        """Per patient (sorted), the most confident box's score (0 for an image with no box)."""
        predictions = read_submission(output)
        return np.array([predictions[patient].scores.max(initial=0.0) for patient in sorted(predictions)])

    def explain_input(self, data: Path) -> Path:
        return list_dicom_folder(data / TEST_IMAGES)[0]


DEMO = PneumoniaDemo()
