"""A synthetic MRNet-v1.0 tree: the official layout, uint8 (S, 256, 256) volumes, the six label CSVs.

Knee-like anatomy per plane (femur, tibia, patella, the ACL band, menisci) with learnable findings where a
reader would look: abnormal exams show a joint effusion or a bone bruise, ACL tears disrupt the ACL band
(sagittal, faintly coronal), meniscal tears put a bright line through a meniscus (coronal, sagittal).
ACL and meniscal tears only occur in abnormal exams, as in the real data; one finding in ten is occult (not
drawn), so even a perfect reader stays below an AUROC of 1. Slice counts differ by plane.
Each exam is drawn from its own seed, so the bytes do not depend on the number of workers. `DEMO` is the
round trip `radlab demo --task mrnet` (and the contract tests) run on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radlab.core.demo import DemoSpec, Evaluation
from radlab.core.io.atomic import atomic_path
from radlab.core.io.synthetic import held_out_count, write_csv_rows, write_each
from radlab.tasks.mrnet.formats import PLANES, ROOT_NAME, TASKS, read_exam_paths, read_predictions, write_paths_csv

SIZE = 256
_SLICES = {"axial": (20, 36), "coronal": (17, 30), "sagittal": (17, 32)}
_GRID = np.linspace(-1.0, 1.0, SIZE, dtype=np.float32)
_OCCULT = 0.1


@dataclass(frozen=True)
class _Exam:
    split: str
    exam_id: str
    labels: tuple[int, int, int]


def synthesize_mrnet(
    out: str | Path, exams: int = 200, seed: int = 0, valid_fraction: float = 0.25, workers: int | None = None
) -> dict[str, dict[str, int]]:
    """Write OUT/MRNet-v1.0/{train,valid}/{axial,coronal,sagittal}/NNNN.npy and the six CSVs."""
    n_valid = held_out_count(exams, valid_fraction, least=8, held_out_least=4, what="exams")
    out, rng = Path(out), np.random.default_rng(seed)
    plan: list[_Exam] = []
    for index in range(exams):
        split = "train" if index < exams - n_valid else "valid"
        abnormal = index % 4 != 0 if index < 8 else bool(rng.random() < 0.7)
        acl = abnormal and bool(rng.random() < 0.35)
        meniscus = abnormal and bool(rng.random() < 0.45)
        plan.append(_Exam(split, f"{index:04d}", (int(abnormal), int(acl), int(meniscus))))
    write_each(_write_exam, out, plan, seed, workers, chunksize=4)
    summary = {}
    for split in ("train", "valid"):
        chosen = [e for e in plan if e.split == split]
        for t, task in enumerate(TASKS):
            write_csv_rows(out / ROOT_NAME / f"{split}-{task}.csv", [[e.exam_id, e.labels[t]] for e in chosen])
        summary[split] = {
            "exams": len(chosen),
            **{task: sum(e.labels[t] for e in chosen) for t, task in enumerate(TASKS)},
        }
    return summary


def _write_exam(out: Path, exam: _Exam, seed: np.random.SeedSequence) -> None:
    rng = np.random.default_rng(seed)
    abnormal, acl, meniscus = exam.labels
    findings = {
        "effusion": bool(abnormal and (not (acl or meniscus) or rng.random() < 0.6) and rng.random() < 0.75),
        "acl": bool(acl),
        "meniscus": bool(meniscus),
    }
    findings["bruise"] = bool(abnormal and not any(findings.values())) or bool(abnormal and rng.random() < 0.2)
    for name in findings:  # as in real reads, some labelled findings are occult on the images
        findings[name] = findings[name] and rng.random() >= _OCCULT
    shift = rng.uniform(-0.06, 0.06, size=2).astype(np.float32)
    gain = float(rng.uniform(0.85, 1.15))
    for plane in PLANES:
        slices = int(rng.integers(*_SLICES[plane]))
        volume = render_series(plane, slices, findings, shift, gain, rng)
        path = out / ROOT_NAME / exam.split / plane / f"{exam.exam_id}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, durable=False) as tmp, open(tmp, "wb") as handle:
            np.save(handle, volume)


def render_series(
    plane: str, slices: int, findings: dict[str, bool], shift: np.ndarray, gain: float, rng: np.random.Generator
) -> np.ndarray:
    """One (slices, 256, 256) uint8 series of a plane, with the exam's findings."""
    x = _GRID[None, :] - shift[0]
    y = _GRID[:, None] - shift[1]
    volume = np.empty((slices, SIZE, SIZE), dtype=np.uint8)
    bruise_at = rng.uniform(-0.4, 0.4)
    for i in range(slices):
        z = 2.0 * i / max(1, slices - 1) - 1.0
        scale = float(np.sqrt(max(0.0, 1.0 - 0.6 * z * z)))
        img = rng.standard_normal((SIZE, SIZE), dtype=np.float32) * 6.0 + 18.0
        img += 60.0 * _ellipse(x, y, 0, 0, 0.85 * scale, 0.95)
        for cx, cy, rx, ry, value in _bones(plane):
            img = np.where(_ellipse(x, y, cx, cy, rx * scale, ry) > 0, value + rng.normal(0, 4), img)
        central = abs(z) < 0.35
        if plane == "sagittal" and central:
            img = np.where(_band(x, y, (-0.05, -0.12), (0.12, 0.18), 0.045) > 0, 35.0, img)
        if plane in ("coronal", "sagittal") and abs(z) < 0.6:
            for side in (-1, 1):
                img = np.where(_wedge(x, y, side * (0.36 if plane == "coronal" else 0.26), 0.04) > 0, 30.0, img)
        img = _add_findings(img, plane, z, x, y, findings, bruise_at)
        volume[i] = np.clip(img * gain, 0, 255).astype(np.uint8)
    return volume


def _bones(plane: str) -> list[tuple[float, float, float, float, float]]:
    if plane == "sagittal":
        return [(0.0, -0.48, 0.36, 0.42, 140.0), (0.0, 0.52, 0.34, 0.38, 135.0), (0.55, -0.45, 0.1, 0.2, 130.0)]
    if plane == "coronal":
        return [(-0.2, -0.38, 0.18, 0.32, 140.0), (0.2, -0.38, 0.18, 0.32, 140.0), (0.0, 0.48, 0.45, 0.32, 135.0)]
    return [(0.0, 0.05, 0.42, 0.4, 140.0), (0.0, -0.62, 0.2, 0.1, 130.0)]


def _add_findings(
    img: np.ndarray, plane: str, z: float, x: np.ndarray, y: np.ndarray, findings: dict[str, bool], bruise_at: float
) -> np.ndarray:
    if findings["effusion"] and abs(z) < 0.55:
        where = {
            "sagittal": (0.32, -0.62, 0.12, 0.2),
            "axial": (0.0, -0.45, 0.32, 0.08),
            "coronal": (0.0, -0.8, 0.3, 0.06),
        }[plane]
        img = np.where(_ellipse(x, y, *where) > 0, 225.0, img)
    if findings["bruise"] and abs(z - bruise_at) < 0.3:
        img = np.where(_ellipse(x, y, 0.1, -0.35 if plane != "axial" else 0.1, 0.12, 0.09) > 0, 205.0, img)
    if findings["acl"] and abs(z) < 0.35:
        if plane == "sagittal":
            img = np.where(_ellipse(x, y, 0.04, 0.03, 0.11, 0.09) > 0, 210.0, img)
        elif plane == "coronal":
            img = np.where(_ellipse(x, y, 0.0, 0.0, 0.07, 0.07) > 0, 185.0, img)
    if findings["meniscus"] and abs(z) < 0.5 and plane in ("coronal", "sagittal"):
        cx = 0.36 if plane == "coronal" else -0.26
        img = np.where(_band(x, y, (cx - 0.12, 0.07), (cx + 0.12, 0.01), 0.025) > 0, 225.0, img)
    return img


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    if rx <= 0 or ry <= 0:
        return np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=np.float32)
    return (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0).astype(np.float32)


def _band(
    x: np.ndarray, y: np.ndarray, a: tuple[float, float], b: tuple[float, float], half_width: float
) -> np.ndarray:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    distance = np.hypot(x - (ax + t * dx), y - (ay + t * dy))
    return (distance <= half_width).astype(np.float32)


def _wedge(x: np.ndarray, y: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """A meniscus: a small triangle pointing into the joint, its base at the joint margin."""
    inward = -np.sign(cx)
    u = (x - cx) * inward
    return ((u >= 0) & (u <= 0.12) & (np.abs(y - cy) <= 0.035 * (1 - u / 0.12))).astype(np.float32)


DEMO_PATHS = "valid-paths.csv"
"""The demo's prediction input, beside MRNet-v1.0/: the valid exams, three paths each, planes shuffled."""


class MRNetDemo(DemoSpec):
    what = "200 exams"

    def synth(self, data: Path, seed: int, exams: int = 200, **options: Any) -> str:
        counts = synthesize_mrnet(data, exams=exams, seed=seed, **options)
        write_paths_csv(data, "valid", data / DEMO_PATHS, seed)
        return f"train {counts['train']}, valid {counts['valid']}"

    def predict_args(self, data: Path, run: Path, output: Path) -> list[str]:
        return [str(data / DEMO_PATHS), str(output), "--data-root", str(data)]

    def inputs(self, data: Path) -> list[Path]:
        return [data / path for exam in read_exam_paths(data / DEMO_PATHS) for _, path in exam.planes.values()]

    def evaluate(self, data: Path, output: Path, metrics: dict[str, Any]) -> Evaluation:
        from radlab.tasks.mrnet.formats import evaluate_files, results_table

        scores, per_task = evaluate_files("valid", output, data_root=data, paths_csv=data / DEMO_PATHS)
        return Evaluation(scores, results_table(scores, per_task), scores)

    def scores(self, output: Path) -> np.ndarray:
        return read_predictions(output)

    def explain_input(self, data: Path) -> Path:
        return sorted((data / ROOT_NAME / "valid" / "sagittal").glob("*.npy"))[0]


DEMO = MRNetDemo()
