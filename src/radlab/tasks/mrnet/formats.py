"""MRNet-v1.0 files: `{split}/{plane}/NNNN.npy` volumes, `{split}-{task}.csv` labels, and the submission.

Ids stay 4-digit strings (a label file whose ids lost their zeros is padded back). The prediction input
lists three `.npy` paths per exam in any order; the plane is read from the path and exams keep their
first-seen order. The output has one headerless row `p_abnormal,p_acl,p_meniscus` per exam, in input
order: the official grader matches rows by position only. The evaluation (at the end) scores it.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radlab.core.console import warn
from radlab.core.errors import RadlabDataError
from radlab.core.io import resolve_dataset_root
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.csvfiles import iter_csv_rows
from radlab.core.metrics import roc_auc, sensitivity_specificity
from radlab.tasks.mrnet import PLANES, TASKS  # defined with the config, which the command line imports

ROOT_NAME = "MRNet-v1.0"
SPLITS = ("train", "valid")
_PLANE_FOLDER = re.compile(r"(?:^|/)(axial|coronal|sagittal)/")


@dataclass
class Exam:
    """One exam of a prediction input: its key and, per plane, (CSV line, path)."""

    key: str
    planes: dict[str, tuple[int, str]] = field(default_factory=dict)


def plane_of(path: str) -> str | None:
    """The plane of a volume path: its `axial/`, `coronal/` or `sagittal/` folder, else a substring."""
    match = _PLANE_FOLDER.search(path)
    if match:
        return match.group(1)
    found = [plane for plane in PLANES if plane in path.lower()]
    return found[0] if len(found) == 1 else None


def exam_key(path: str, plane: str) -> str:
    """What identifies an exam across its three planes: the path with the plane removed."""
    match = _PLANE_FOLDER.search(path)
    if match:
        return path[: match.start(1)] + "*" + path[match.end(1) :]
    return re.sub(plane, "*", path, count=1, flags=re.IGNORECASE)


def read_exam_paths(csv_path: str | Path) -> list[Exam]:
    """The prediction input: `.npy` paths, three per exam in any order, no header; exams in first-seen order.
    Paths are normalised (`./`, `//`, `a/../`), so two spellings of one folder make one exam."""
    exams: dict[str, Exam] = {}
    for line, cells in iter_csv_rows(csv_path):
        path = cells[0]
        if len(cells) != 1 or not path.lower().endswith(".npy"):
            if not exams and len(cells) == 1 and "/" not in path and "." not in path:
                warn(f"{csv_path}:{line}: skipping a header row {path!r} (MRNet path CSVs have no header)")
                continue
            raise RadlabDataError(csv_path, f"expected one .npy path per row, got {','.join(cells)!r}", line)
        path = posixpath.normpath(path)  # ./a/b.npy and a//b.npy name the exam a/b.npy does
        plane = plane_of(path)
        if plane is None:
            raise RadlabDataError(csv_path, f"cannot tell the plane (axial, coronal, sagittal) of {path}", line)
        exam = exams.setdefault(exam_key(path, plane), Exam(exam_key(path, plane)))
        if plane in exam.planes:
            raise RadlabDataError(csv_path, f"{plane} given twice for {exam.key}", line)
        exam.planes[plane] = (line, path)
    if not exams:
        raise RadlabDataError(csv_path, "no .npy paths in this file")
    for exam in exams.values():
        missing = [p for p in PLANES if p not in exam.planes]
        if missing:
            first_line = min(line for line, _ in exam.planes.values())
            warn(f"{csv_path}:{first_line}: exam {exam.key} lists no {', '.join(missing)}; predicted from the others")
    return list(exams.values())


def normalise_id(raw: str) -> str | None:
    """`7` or `0007` -> `0007`; anything that is not a non-negative integer -> None."""
    return raw.zfill(4) if raw.isdigit() else None


def read_task_labels(csv_path: str | Path) -> dict[str, int]:
    """`{split}-{task}.csv`: `NNNN,0|1` rows, no header."""
    labels: dict[str, int] = {}
    for line, cells in iter_csv_rows(csv_path):
        exam_id = normalise_id(cells[0]) if cells else None
        label = cells[1] if len(cells) == 2 else None
        if exam_id is None or label not in ("0", "1"):
            if not labels and len(cells) == 2 and not cells[0].isdigit():
                warn(f"{csv_path}:{line}: skipping a header row {','.join(cells)!r} (MRNet label CSVs have no header)")
                continue
            raise RadlabDataError(csv_path, f"expected 'NNNN,0' or 'NNNN,1', got {','.join(cells)!r}", line)
        if labels.setdefault(exam_id, int(label)) != int(label):
            raise RadlabDataError(csv_path, f"exam {exam_id} is labelled both 0 and 1", line)
    return labels


def read_split_labels(data_root: Path, split: str) -> tuple[list[str], np.ndarray]:
    """Exam ids (ascending) and their (n, 3) labels from the three `{split}-{task}.csv` files."""
    per_task = {task: read_task_labels(label_csv(data_root, split, task)) for task in TASKS}
    ids = sorted(per_task["abnormal"])
    for task in TASKS[1:]:
        if sorted(per_task[task]) != ids:
            extra = sorted(set(per_task[task]) ^ set(ids))[:3]
            raise RadlabDataError(label_csv(data_root, split, task), f"exams differ from {split}-abnormal.csv: {extra}")
    labels = np.array([[per_task[task][i] for task in TASKS] for i in ids], dtype=np.int64)
    return ids, labels


def read_truth_rows(csv_path: str | Path) -> np.ndarray:
    """A headerless truth file: one `abnormal,acl,meniscus` row of 0/1 per exam."""
    rows = []
    for line, cells in iter_csv_rows(csv_path):
        if len(cells) != 3 or any(c not in ("0", "1") for c in cells):
            raise RadlabDataError(csv_path, f"expected 'abnormal,acl,meniscus' as 0/1, got {','.join(cells)!r}", line)
        rows.append([int(c) for c in cells])
    if not rows:
        raise RadlabDataError(csv_path, "no rows in this file")
    return np.array(rows, dtype=np.int64)


def read_predictions(csv_path: str | Path) -> np.ndarray:
    """A submission: one headerless `p_abnormal,p_acl,p_meniscus` row per exam, probabilities in [0, 1]."""
    rows: list[list[float]] = []
    for line, cells in iter_csv_rows(csv_path):
        try:
            values = [float(c) for c in cells]
        except ValueError:
            values = []
        if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
            hint = " (a header row? submissions have none)" if not rows else ""
            raise RadlabDataError(csv_path, f"expected three probabilities, got {','.join(cells)!r}{hint}", line)
        rows.append(values)
    if not rows:
        raise RadlabDataError(csv_path, "no predictions in this file")
    return np.array(rows, dtype=np.float64)


def write_predictions(path: str | Path, rows: Iterable[Iterable[float]]) -> None:
    """The submission: `p_abnormal,p_acl,p_meniscus` per exam, no header, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([f"{float(p):.6f}" for p in row] for row in rows)
    atomic_write_text(path, buffer.getvalue())


def write_paths_csv(
    data_root: Path, split: str, out: str | Path, seed: int | None = None, ids: Sequence[str] | None = None
) -> None:
    """A prediction input for the exams `ids` of a split (default all): three paths per exam, relative to
    `data_root`; the planes of each exam in a shuffled order drawn from `seed` (None: in plane order)."""
    rng = None if seed is None else np.random.default_rng(seed)
    lines = []
    for exam_id in read_split_labels(data_root, split)[0] if ids is None else ids:
        for plane in PLANES if rng is None else rng.permutation(PLANES):
            lines.append(f"{ROOT_NAME}/{split}/{plane}/{exam_id}.npy\n")
    atomic_write_text(out, "".join(lines))


def resolve_data_root(folder: str | Path) -> Path:
    """The folder the CSV paths are relative to: the folder holding MRNet-v1.0/ (given it or MRNet-v1.0 itself)."""
    return resolve_dataset_root(folder, ROOT_NAME)


def label_csv(data_root: Path, split: str, task: str) -> Path:
    return data_root / ROOT_NAME / f"{split}-{task}.csv"


def volume_path(data_root: Path, split: str, plane: str, exam_id: str) -> Path:
    return data_root / ROOT_NAME / split / plane / f"{exam_id}.npy"


# The evaluation: AUROC per column (abnormal, ACL, meniscus) matched by row position, and their mean; the JSON
# keys as on the leaderboard.
KEYS = {"abnormal": "Abnormal_AUROC", "acl": "ACL_AUROC", "meniscus": "Meniscus_AUROC"}
PAPER_AUROC = {"abnormal": 0.937, "acl": 0.965, "meniscus": 0.847}
"""The paper's test-set AUROCs (Bien et al. 2018, Table 2), shown beside ours."""


def official_scores(truth: np.ndarray, probs: np.ndarray, tasks: Sequence[str] = TASKS) -> dict[str, float | None]:
    """AUROC per task (None where a column has one class) and `Average_AUROC` over the tasks given."""
    scores: dict[str, float | None] = {}
    for task in TASKS:
        auroc = roc_auc(truth[:, TASKS.index(task)], probs[:, TASKS.index(task)]) if task in tasks else float("nan")
        scores[KEYS[task]] = None if np.isnan(auroc) else float(auroc)
    present = [value for t in tasks if (value := scores[KEYS[t]]) is not None]
    scores["Average_AUROC"] = float(np.mean(present)) if present else None
    return scores


def details(truth: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, dict[str, Any]]:
    """Per task: exams, positives, sensitivity and specificity at `threshold`."""
    out = {}
    for k, task in enumerate(TASKS):
        sens, spec = sensitivity_specificity(truth[:, k], (probs[:, k] > threshold).astype(int))
        out[task] = {
            "n": len(truth),
            "positives": int(truth[:, k].sum()),
            "sensitivity": None if np.isnan(sens) else sens,
            "specificity": None if np.isnan(spec) else spec,
        }
    return out


def load_truth(
    truth: str | Path, data_root: str | Path | None = None, paths_csv: str | Path | None = None
) -> np.ndarray:
    """(n, 3) labels: a headerless `abnormal,acl,meniscus` file, or with `data_root` a split name (or one of
    its official `{split}-{task}.csv` files), ordered by exam id or by the exams of `paths_csv`."""
    if data_root is None:
        return read_truth_rows(truth)
    root = resolve_data_root(data_root)
    name = Path(truth).name
    split = name if name in SPLITS else next((s for s in SPLITS if re.match(rf"{s}-\w+\.csv$", name)), None)
    if split is None:
        raise RadlabDataError(
            truth, f"with --data-root, give a split ({', '.join(SPLITS)}) or a {{split}}-{{task}}.csv"
        )
    ids, labels = read_split_labels(root, split)
    if paths_csv is None:
        return labels
    position = {exam_id: i for i, exam_id in enumerate(ids)}
    order = []
    for exam in read_exam_paths(paths_csv):
        exam_id = Path(exam.key).stem
        if exam_id not in position:
            line = min(line for line, _ in exam.planes.values())
            raise RadlabDataError(paths_csv, f"exam {exam_id} is not in the {split} labels", line)
        order.append(position[exam_id])
    return labels[order]


def evaluate_files(
    truth: str | Path,
    predictions_csv: str | Path,
    data_root: str | Path | None = None,
    paths_csv: str | Path | None = None,
) -> tuple[dict[str, float | None], dict[str, dict[str, Any]]]:
    """Official scores and per-task details; a row-count mismatch is a data error (rows match by position)."""
    labels = load_truth(truth, data_root, paths_csv)
    probs = read_predictions(predictions_csv)
    if len(probs) != len(labels):
        raise RadlabDataError(
            predictions_csv, f"has {len(probs)} rows but the truth has {len(labels)} exams (rows match by position)"
        )
    scores = official_scores(labels, probs)
    undefined = [key for key in KEYS.values() if scores[key] is None]
    if undefined:
        kept = len(KEYS) - len(undefined)
        warn(
            f"{', '.join(undefined)} undefined (one class only in the truth); "
            f"Average_AUROC is the mean of {kept} task{'s' * (kept != 1)}, not of three"
        )
    return scores, details(labels, probs)


def results_table(
    scores: dict[str, float | None], per_task: dict[str, dict[str, Any]], title: str = "MRNet, synthetic valid split"
) -> Any:
    """Per label: exams, positives, AUROC, sensitivity and specificity at 0.5, the paper's AUROC (rich)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("label", "exams", "positives", "AUROC", "sens", "spec", "paper (test)"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for task, key in KEYS.items():
        entry = per_task[task]
        cells = (scores[key], entry["sensitivity"], entry["specificity"], PAPER_AUROC[task])
        shown = ["n/a" if value is None else f"{value:.3f}" for value in cells]
        table.add_row(task, str(entry["n"]), str(entry["positives"]), *shown)
    return table


def merge(input_csv: Path, output: Path, shards: Sequence[Path]) -> str:
    """`radlab mrnet merge`: the shard files of `predict --shard` as one, a row per exam in the input's
    order. Rows name no exam, so row k of a shard file is the k-th exam of its shard and the counts must
    agree."""
    from radlab.core.infer.shard import merge_shards, positional_lines

    keys = [exam.key for exam in read_exam_paths(input_csv)]
    count = merge_shards(
        [(key, key) for key in keys], shards, output, lambda path, expected: positional_lines(path, expected, "exam")
    )
    return f"{count} exams from {len(shards)} shard files -> {output}"


def case_metric(
    labels: Sequence[str], truth: np.ndarray, probs: np.ndarray, config: dict[str, Any]
) -> dict[str, float | None]:
    """The official AUROCs from a validation case table (what `radlab calibrate` reports before and after)."""
    order = [list(labels).index(task) for task in TASKS]
    return official_scores(truth[:, order], probs[:, order])
