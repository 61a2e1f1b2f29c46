"""RSNA Pneumonia files: the data folder, box labels, class info, and the Kaggle submission.

- `stage_2_train_labels.csv`: header `patientId,x,y,width,height,Target`, one row per box; a negative patient
  has one row with empty coordinates and Target 0. Boxes are (x, y, width, height) in original pixels.
- `stage_2_detailed_class_info.csv`: header `patientId,class`, one row per label row (so duplicated for
  patients with several boxes; deduplicated here), classes exactly as in CLASSES.
- Submission: header `patientId,PredictionString`; groups `conf x y w h` separated by spaces, empty for
  none; one row per test image.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radlab.core.errors import RadlabDataError
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.csvfiles import iter_csv_rows

# The global head's class order in the 2nd-place solution: index 2 is Lung Opacity.
CLASSES = ("No Lung Opacity / Not Normal", "Normal", "Lung Opacity")
LABELS_HEADER = ["patientId", "x", "y", "width", "height", "Target"]
CLASS_HEADER = ["patientId", "class"]
SUBMISSION_HEADER = ["patientId", "PredictionString"]
TRAIN_LABELS = "stage_2_train_labels.csv"
CLASS_INFO = "stage_2_detailed_class_info.csv"
TRAIN_IMAGES = "stage_2_train_images"
TEST_IMAGES = "stage_2_test_images"
# What a run directory keeps besides the common files: the mAP of every swept score threshold per epoch, and
# the kept epoch's boxes on every validation image (the report's gallery).
SWEEP_FILE = "threshold_sweep.csv"
DETECTIONS_FILE = "valid_detections.json"


@dataclass
class Prediction:
    """Boxes (n, 4) as x, y, width, height in original pixels, with their confidences (n,)."""

    boxes: np.ndarray
    scores: np.ndarray


def resolve_data_root(folder: str | Path) -> Path:
    """The folder holding stage_2_train_labels.csv, stage_2_detailed_class_info.csv and the image folders."""
    folder = Path(folder)
    if not (folder / TRAIN_LABELS).is_file():
        raise RadlabDataError(folder / TRAIN_LABELS, "missing: pass the folder that holds the challenge's files")
    return folder


def _rows_after_header(csv_path: str | Path, header: list[str]) -> Iterable[tuple[int, list[str]]]:
    rows = iter(iter_csv_rows(csv_path))
    first = next(rows, None)
    if first is None or first[1] != header:
        got = ",".join(first[1]) if first else "an empty file"
        raise RadlabDataError(csv_path, f"expected the header {','.join(header)!r}, got {got!r}", 1)
    return rows


def read_box_labels(csv_path: str | Path) -> dict[str, np.ndarray]:
    """patientId -> (n, 4) boxes (x, y, w, h), empty for a negative patient; patients in file order."""
    boxes: dict[str, list[list[float]]] = {}
    targets: dict[str, int] = {}
    for line, cells in _rows_after_header(csv_path, LABELS_HEADER):
        if len(cells) != 6 or not cells[0] or cells[5] not in ("0", "1"):
            raise RadlabDataError(
                csv_path, f"expected patientId,x,y,width,height,Target, got {','.join(cells)!r}", line
            )
        patient, target = cells[0], int(cells[5])
        if targets.setdefault(patient, target) != target:
            raise RadlabDataError(csv_path, f"patient {patient} has rows with Target 0 and Target 1", line)
        boxes.setdefault(patient, [])
        if target == 0:
            if any(cells[1:5]):
                raise RadlabDataError(csv_path, f"a Target 0 row has coordinates for {patient}", line)
            continue
        try:
            box = [float(v) for v in cells[1:5]]
        except ValueError:
            raise RadlabDataError(csv_path, f"a Target 1 row needs four numbers, got {cells[1:5]}", line) from None
        if box[2] <= 0 or box[3] <= 0 or not np.isfinite(box).all():
            raise RadlabDataError(csv_path, f"box {box} has no area", line)
        boxes[patient].append(box)
    return {patient: np.array(b, dtype=np.float64).reshape(-1, 4) for patient, b in boxes.items()}


def read_class_info(csv_path: str | Path) -> dict[str, str]:
    """patientId -> one of CLASSES (the file repeats patients with several boxes; duplicates are dropped)."""
    classes: dict[str, str] = {}
    for line, cells in _rows_after_header(csv_path, CLASS_HEADER):
        if len(cells) != 2 or cells[1] not in CLASSES:
            raise RadlabDataError(
                csv_path, f"expected patientId and one of {list(CLASSES)}, got {','.join(cells)!r}", line
            )
        if classes.setdefault(cells[0], cells[1]) != cells[1]:
            raise RadlabDataError(csv_path, f"patient {cells[0]} has two classes", line)
    return classes


def format_prediction_string(boxes: np.ndarray, scores: np.ndarray) -> str:
    """`conf x y w h` groups separated by spaces (empty for no box), highest confidence first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    return " ".join(
        f"{scores[i]:.4f} {boxes[i, 0]:.1f} {boxes[i, 1]:.1f} {boxes[i, 2]:.1f} {boxes[i, 3]:.1f}" for i in order
    )


def write_submission(path: str | Path, rows: Iterable[tuple[str, Prediction]]) -> None:
    """The Kaggle submission, atomically: the exact header, one row per patient."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUBMISSION_HEADER)
    for patient, prediction in rows:
        writer.writerow([patient, format_prediction_string(prediction.boxes, prediction.scores)])
    atomic_write_text(path, buffer.getvalue())


def read_submission(csv_path: str | Path) -> dict[str, Prediction]:
    """patientId -> Prediction, from a Kaggle submission (groups of five numbers)."""
    predictions: dict[str, Prediction] = {}
    for line, cells in _rows_after_header(csv_path, SUBMISSION_HEADER):
        if len(cells) != 2 or not cells[0]:
            raise RadlabDataError(csv_path, f"expected patientId,PredictionString, got {','.join(cells)!r}", line)
        try:
            values = [float(v) for v in cells[1].split()]
        except ValueError:
            raise RadlabDataError(csv_path, f"PredictionString holds a non-number: {cells[1]!r}", line) from None
        if len(values) % 5:
            raise RadlabDataError(csv_path, f"PredictionString has {len(values)} numbers, not groups of 5", line)
        if cells[0] in predictions:
            raise RadlabDataError(csv_path, f"patient {cells[0]} appears twice", line)
        groups = np.array(values, dtype=np.float64).reshape(-1, 5)
        if not np.isfinite(groups).all():
            raise RadlabDataError(csv_path, f"PredictionString holds NaN or infinity: {cells[1]!r}", line)
        if (groups[:, 0] < 0).any():
            raise RadlabDataError(csv_path, f"PredictionString holds a negative confidence: {cells[1]!r}", line)
        predictions[cells[0]] = Prediction(groups[:, 1:], groups[:, 0])
    return predictions


def merge(input_dir: Path, output: Path, shards: Sequence[Path]) -> str:
    """`radlab pneumonia merge`: the submissions of `predict --shard` as one, the header once and a row per
    image in the input folder's sorted order, as the unsharded predict writes it."""
    from radlab.core.infer.shard import keyed_lines, merge_shards
    from radlab.core.io.dicom import list_dicom_folder

    patients = [path.stem for path in list_dicom_folder(input_dir)]
    count = merge_shards(
        [(p, p) for p in patients], shards, output, lambda path, _: keyed_lines(path, header_lines=1), "image"
    )
    return f"{count} images from {len(shards)} shard files -> {output}"
