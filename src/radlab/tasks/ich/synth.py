"""A synthetic RSNA ICH set: uncompressed head-CT DICOMs with real tags and quirks, `stage_2_train.csv`.

Series of axial slices (skull, brain, ventricles) stored as HU with slope 1 and intercept -1024. Hemorrhages
span contiguous slices and fade towards both ends of their span, so that a faint slice is best read with
its neighbours, as in real scans: epidural (lens at the skull), subdural (crescent), intraparenchymal (blob),
intraventricular (in a ventricle), subarachnoid (thin lines at the surface); "any" is their union.
The quirks of the real data: every tenth series (the second, the twelfth, ...) stores HU wrapped as unsigned
12-bit values with intercept 0 (the pixel-representation bug), every third slice carries multi-valued
WindowCenter / WindowWidth, one training file
has truncated pixel data, two images are listed twice in the label file, and files are not in slice order.
Test series go to stage_2_test_images/ and their truth to synthetic_test_labels.csv. `DEMO` is the round
trip `radlab demo --task ich` (and the contract tests) run on it: the three training stages, the test folder
predicted and scored against that truth.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from radlab.core.demo import DemoSpec, Evaluation
from radlab.core.io.atomic import atomic_path
from radlab.core.io.synthetic import held_out_count, write_csv_rows, write_each
from radlab.tasks.ich.formats import HEADER, SUBTYPES, TEST_IMAGES, TRAIN_CSV, TRAIN_IMAGES, read_submission

TEST_TRUTH = "synthetic_test_labels.csv"
_HEMORRHAGES = SUBTYPES[:5]


@dataclass
class _Series:
    split: str
    patient: str
    study: str
    series: str
    slices: int
    quirk: bool
    bleeds: list[tuple[int, int, int]] = field(default_factory=list)  # (subtype index, first, last)
    images: list[str] = field(default_factory=list)


def _hex(rng: np.random.Generator, digits: int) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), size=digits))


def synthesize_ich(
    out: str | Path,
    series: int = 60,
    seed: int = 0,
    size: int = 512,
    test_fraction: float = 0.2,
    workers: int | None = None,
) -> dict[str, dict[str, int]]:
    """Write the set into `out`; `size` is the slice side (the real slices are mostly 512)."""
    n_test = held_out_count(series, test_fraction, least=5, held_out_least=1, what="series")
    out, rng = Path(out), np.random.default_rng(seed)
    plan = []
    for index in range(series):
        count = int(rng.integers(10, 21))
        item = _Series(
            "test" if index >= series - n_test else "train",
            f"ID_{_hex(rng, 8)}",
            f"ID_{_hex(rng, 10)}",
            f"ID_{_hex(rng, 10)}",
            count,
            index % 10 == 1,
        )
        if index % 2 == 0 or rng.random() < 0.2:
            for subtype in rng.choice(5, size=int(rng.integers(1, 3)), replace=False):
                length = int(rng.integers(max(3, count // 4), max(4, count // 2)))
                first = int(rng.integers(0, count - length + 1))
                item.bleeds.append((int(subtype), first, first + length - 1))
        item.images = [f"ID_{_hex(rng, 9)}" for _ in range(count)]
        plan.append(item)
    write_each(_write_series, out, plan, seed, workers, size, chunksize=2)
    train = [s for s in plan if s.split == "train"]
    corrupt = train[0].images[len(train[0].images) // 2]
    _truncate(out / TRAIN_IMAGES / f"{corrupt}.dcm")
    summary = {}
    for split, name in (("train", TRAIN_CSV), ("test", TEST_TRUTH)):
        chosen = [s for s in plan if s.split == split]
        rows: list[list[object]] = [list(HEADER)]
        for item in chosen:
            labels = _slice_labels(item)
            for image, row in zip(item.images, labels, strict=True):
                rows += [[f"{image}_{subtype}", int(v)] for subtype, v in zip(SUBTYPES, row, strict=True)]
        if split == "train":
            rows += rows[1:7] + rows[61:67]  # two images listed twice, as in the real file
        write_csv_rows(out / name, rows)
        summary[split] = {
            "series": len(chosen),
            "images": sum(s.slices for s in chosen),
            "any": int(sum(_slice_labels(s)[:, 5].sum() for s in chosen)),
        }
    return summary


def _slice_labels(item: _Series) -> np.ndarray:
    labels = np.zeros((item.slices, 6), dtype=np.int64)
    for subtype, first, last in item.bleeds:
        labels[first : last + 1, subtype] = 1
    labels[:, 5] = labels[:, :5].max(axis=1)
    return labels


def _write_series(out: Path, item: _Series, seed: np.random.SeedSequence, size: int) -> None:
    rng = np.random.default_rng(seed)
    centre = rng.uniform(0.47, 0.53, 2)
    radius = rng.uniform(0.36, 0.42)
    side = 1 if rng.random() < 0.5 else -1
    folder = out / (TRAIN_IMAGES if item.split == "train" else TEST_IMAGES)
    for k in rng.permutation(item.slices):
        hu = render_slice(size, k, item.slices, item.bleeds, centre, radius, side, rng)
        _write_dicom(folder / f"{item.images[k]}.dcm", hu, item, int(k))


def render_slice(
    size: int,
    k: int,
    count: int,
    bleeds: list[tuple[int, int, int]],
    centre: np.ndarray,
    radius: float,
    side: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One (size, size) slice in HU."""
    grid = np.linspace(0.0, 1.0, size, dtype=np.float32)
    y, x = grid[:, None] - centre[1], grid[None, :] - centre[0]
    level = (k + 0.5) / count
    scale = float(np.sqrt(max(0.05, 1.0 - (2 * level - 1.1) ** 2)))
    rx, ry = radius * scale * 0.85, radius * scale
    r = np.sqrt((x / rx) ** 2 + (y / ry) ** 2)
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    hu[r <= 1.0] = 1100.0 + rng.normal(0, 60)
    brain = r <= 0.9
    hu[brain] = 34.0 + rng.standard_normal(int(brain.sum())).astype(np.float32) * 4.0
    if 0.3 < level < 0.8:
        for sign in (-1, 1):
            ventricle = ((x - sign * 0.05 * scale) / (0.035 * scale)) ** 2 + (y / (0.12 * scale)) ** 2 <= 1
            hu[ventricle] = 6.0
    for subtype, first, last in bleeds:
        if not first <= k <= last:
            continue
        span = max(1, last - first)
        position = (k - first) / span
        strength = 0.35 + 0.65 * np.sin(np.pi * position) if span > 1 else 1.0
        _bleed(hu, _HEMORRHAGES[subtype], x, y, r, rx, ry, side, scale, strength)
    return hu


def _bleed(hu, kind, x, y, r, rx, ry, side, scale, strength) -> None:
    value = 34.0 + (70.0 - 34.0 + 15.0) * strength
    if kind == "epidural":
        mask = (r > 0.78) & (r <= 0.9) & (side * x > 0) & (np.abs(y) < ry * 0.35 * (0.5 + strength / 2))
    elif kind == "subdural":
        mask = (r > 0.82) & (r <= 0.9) & (side * x < 0) & (np.abs(y) < ry * 0.7)
    elif kind == "intraparenchymal":
        mask = ((x - side * 0.12 * scale) ** 2 + (y + 0.05) ** 2) <= (0.06 * scale * (0.6 + 0.4 * strength)) ** 2
    elif kind == "intraventricular":
        mask = ((x - side * 0.05 * scale) / (0.03 * scale)) ** 2 + ((y - 0.03) / (0.07 * scale)) ** 2 <= 1
    else:
        mask = (r > 0.7) & (r < 0.9) & (np.abs(np.sin(np.arctan2(y, x) * 12)) < 0.2)
    hu[mask] = value


def _write_dicom(path: Path, hu: np.ndarray, item: _Series, k: int) -> None:
    # The challenge's UIDs look like "ID_63eb1e259", which pydicom flags both as a warning and on its logger.
    pydicom_log = logging.getLogger("pydicom")
    level = pydicom_log.level
    pydicom_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _build_and_save(path, hu, item, k)
    finally:
        pydicom_log.setLevel(level)


def _build_and_save(path: Path, hu: np.ndarray, item: _Series, k: int) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(path.stem)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = path.stem
    ds.Modality = "CT"
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = item.patient, item.study, item.series
    ds.ImagePositionPatient = [-125.0, -120.0, round(100.0 + 5.0 * k, 2)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.488, 0.488]
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.RescaleSlope = 1
    if item.quirk:  # HU stored wrapped as unsigned 12-bit with an intercept of 0
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation, ds.RescaleIntercept = 12, 11, 0, 0
        stored = np.mod(np.rint(hu).astype(np.int32), 4096).astype(np.uint16)
    else:
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation, ds.RescaleIntercept = 16, 15, 1, -1024
        stored = (np.rint(hu).astype(np.int32) + 1024).astype(np.int16)
    if k % 3 == 0:
        ds.WindowCenter, ds.WindowWidth = [36, 36], [80, 80]
    else:
        ds.WindowCenter, ds.WindowWidth = 36, 80
    ds.PixelData = stored.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, durable=False) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def _truncate(path: Path) -> None:
    """Cut the pixel data short, as in the real set's corrupt image."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - len(data) // 3])


class IchDemo(DemoSpec):
    what = "60 CT series"
    output_name = "submission.csv"
    reference = "2nd-place single model 0.046 (private LB)"

    def synth(self, data: Path, seed: int, series: int = 60, size: int = 128, **options: Any) -> str:
        counts = synthesize_ich(data, series=series, seed=seed, size=size, **options)
        return f"train {counts['train']}, test {counts['test']}"

    def predict_args(self, data: Path, run: Path, output: Path) -> list[str]:
        return [str(data / TEST_IMAGES), str(output)]

    def inputs(self, data: Path) -> list[Path]:
        return sorted((data / TEST_IMAGES).glob("*.dcm"))

    def evaluate(self, data: Path, output: Path, metrics: dict[str, Any]) -> Evaluation:
        """The submission scored against the synthetic test truth, beside both stages' validation losses."""
        from rich.table import Table

        from radlab.tasks.ich.evaluate import evaluate_files

        test = evaluate_files(data / TEST_TRUTH, output)
        table = Table(title="RSNA ICH, weighted log loss (lower is better)")
        for column in ("", "slice CNN (validation)", "sequence model (validation)", "submission (test)"):
            table.add_column(column, justify="left" if not column else "right")
        for key in ("weighted_log_loss", *(f"{s}_log_loss" for s in SUBTYPES)):
            values = (metrics.get("slice_cnn", {}).get(key), metrics.get("sequence", {}).get(key), test[key])
            table.add_row(key.removesuffix("_log_loss"), *("n/a" if v is None else f"{v:.4f}" for v in values))
        return Evaluation(test, table, {"validation": metrics, "test": test})

    def scores(self, output: Path) -> np.ndarray:
        """The submission's probabilities, images in name order."""
        images, probs = read_submission(output)
        return probs[np.argsort(images)]

    def explain_input(self, data: Path) -> Path:
        return self.inputs(data)[0]


DEMO = IchDemo()
