"""A synthetic MURA-v1.1 tree: the exact official layout and CSVs, a learnable signal, the real quirks.

Abnormal studies show orthopaedic hardware (a bright plate with screws), a fracture gap or a lytic lesion on
most of their images; normal studies show none. Both carry side markers and soft tissue. As in the real
data, some images are RGB or LA rather than L, some are intensity-inverted, and sizes vary (longest side
at most 512). Everything is drawn from one seed, so a seed gives the same bytes every time. `DEMO` is the round trip
`radlab demo --task mura` (and the contract tests) run on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from radlab.core.demo import DemoSpec, Evaluation
from radlab.core.io.atomic import atomic_path
from radlab.core.io.synthetic import held_out_count, write_csv_rows, write_each
from radlab.tasks.mura.formats import ROOT_NAME, STUDY_TYPES, read_image_paths, read_probabilities

# Study counts per type in the real dataset (paper, Table 1), used as sampling weights.
_TYPE_WEIGHTS = np.array([1912, 2110, 1010, 2185, 727, 3015, 3697], dtype=np.float64)
_ABNORMAL_RATE = {
    "ELBOW": 0.40,
    "FINGER": 0.36,
    "FOREARM": 0.34,
    "HAND": 0.28,
    "HUMERUS": 0.47,
    "SHOULDER": 0.51,
    "WRIST": 0.39,
}
_IMAGES_PER_STUDY = ([1, 2, 3, 4, 5, 6], [0.15, 0.32, 0.33, 0.12, 0.05, 0.03])
_FINDINGS = ("hardware", "fracture", "lesion")
_VALID_ORDER = ("WRIST", "FOREARM", "HAND", "HUMERUS", "SHOULDER", "ELBOW", "FINGER")


@dataclass
class _Study:
    split: str
    patient: int
    kind: str
    number: int
    abnormal: bool
    images: int

    @property
    def folder(self) -> str:
        outcome = "positive" if self.abnormal else "negative"
        return f"{ROOT_NAME}/{self.split}/XR_{self.kind}/patient{self.patient:05d}/study{self.number}_{outcome}/"


def synthesize_mura(
    out: str | Path,
    studies: int = 600,
    seed: int = 0,
    valid_fraction: float = 0.2,
    workers: int | None = None,
) -> dict:
    """Write OUT/MURA-v1.1/{train,valid}/... and the four headerless CSVs; return counts per split.

    Each study is drawn from its own seed (derived from `seed` and its position), so the bytes do not
    depend on how many `workers` render in parallel.
    """
    n_valid = held_out_count(
        studies, valid_fraction, least=14, held_out_least=7, what="studies (one per type and split)"
    )
    out, rng = Path(out), np.random.default_rng(seed)
    plan = _plan_split("train", studies - n_valid, 1, rng)
    plan += _plan_split("valid", n_valid, plan[-1].patient + 1, rng)
    written = write_each(_write_study, out, plan, seed, workers, chunksize=8)
    paths_of = {id(study): paths for study, paths in zip(plan, written, strict=True)}
    summary: dict[str, dict[str, int]] = {}
    for split in ("train", "valid"):
        chosen = [s for s in plan if s.split == split]
        order = _VALID_ORDER if split == "valid" else STUDY_TYPES
        chosen.sort(key=lambda s: (order.index(s.kind), s.patient, s.number))
        image_rows = [path for study in chosen for path in paths_of[id(study)]]
        base = out / ROOT_NAME
        write_csv_rows(base / f"{split}_image_paths.csv", [[p] for p in image_rows])
        write_csv_rows(base / f"{split}_labeled_studies.csv", [[s.folder, int(s.abnormal)] for s in chosen])
        summary[split] = {
            "studies": len(chosen),
            "abnormal": sum(s.abnormal for s in chosen),
            "images": len(image_rows),
        }
    return summary


def _plan_split(split: str, count: int, first_patient: int, rng: np.random.Generator) -> list[_Study]:
    kinds = list(STUDY_TYPES) + list(rng.choice(STUDY_TYPES, size=count - 7, p=_TYPE_WEIGHTS / _TYPE_WEIGHTS.sum()))
    rng.shuffle(kinds)
    studies: list[_Study] = []
    patient = first_patient
    numbers: dict[tuple[int, str], int] = {}
    for kind in kinds:
        if not studies:
            patient = first_patient
        elif rng.random() >= 0.2:  # otherwise the previous patient has another study
            patient += 1
        number = numbers[(patient, kind)] = numbers.get((patient, kind), 0) + 1
        abnormal = bool(rng.random() < _ABNORMAL_RATE[kind])
        images = int(rng.choice(_IMAGES_PER_STUDY[0], p=_IMAGES_PER_STUDY[1]))
        studies.append(_Study(split, patient, kind, number, abnormal, images))
    return studies


def _write_study(out: Path, study: _Study, seed: np.random.SeedSequence) -> list[str]:
    rng = np.random.default_rng(seed)
    finding = str(rng.choice(_FINDINGS, p=[0.4, 0.4, 0.2])) if study.abnormal else None
    shown = rng.random(study.images) < 0.85
    if finding and not shown.any():
        shown[rng.integers(study.images)] = True
    paths = []
    for i in range(study.images):
        pixels = render_radiograph(study.kind, finding if shown[i] else None, rng)
        relative = f"{study.folder}image{i + 1}.png"
        _save_png(out / relative, pixels, rng)
        paths.append(relative)
    return paths


def render_radiograph(kind: str, finding: str | None, rng: np.random.Generator) -> np.ndarray:
    """One grayscale radiograph-like image of a body part, with the finding drawn when given."""
    long_side = 512 if rng.random() < 0.5 else int(rng.integers(300, 513))
    short_side = int(long_side * rng.uniform(0.6, 1.0))
    height, width = (long_side, short_side) if rng.random() < 0.7 else (short_side, long_side)
    scale = min(height, width)
    bones = _layout(kind, height, width, rng)

    tissue = Image.new("L", (width, height), 0)
    bone = Image.new("L", (width, height), 0)
    tissue_draw, bone_draw = ImageDraw.Draw(tissue), ImageDraw.Draw(bone)
    for x0, y0, x1, y1, thickness in bones:
        _capsule(tissue_draw, x0, y0, x1, y1, thickness * 2.6, 70)
        _capsule(bone_draw, x0, y0, x1, y1, thickness, 255)
        _capsule(bone_draw, x0, y0, x1, y1, thickness * 0.45, 190)
    tissue = tissue.filter(ImageFilter.GaussianBlur(scale * 0.03))
    bone = bone.filter(ImageFilter.GaussianBlur(max(1.0, scale * 0.004)))

    pixels = rng.standard_normal((height, width), dtype=np.float32) * 5.0 + 22.0
    pixels += np.asarray(tissue, dtype=np.float32)
    pixels += np.asarray(bone, dtype=np.float32) * np.float32(rng.uniform(0.36, 0.46))
    overlay = Image.new("L", (width, height), 0)
    overlay_draw = ImageDraw.Draw(overlay)
    if rng.random() < 0.7:
        _marker(overlay_draw, height, width, rng)
    if finding:
        _finding(overlay_draw, finding, bones[int(rng.integers(len(bones)))], pixels, rng)
    overlay_pixels = np.asarray(overlay, dtype=np.float32)
    pixels = np.where(overlay_pixels > 0, overlay_pixels, pixels)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _layout(kind: str, h: int, w: int, rng: np.random.Generator) -> list[tuple[float, float, float, float, float]]:
    """Bone segments (x0, y0, x1, y1, thickness) for a body part, jittered and rotated."""
    s = min(h, w)
    cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
    t = s * rng.uniform(0.07, 0.1)
    segs: list[tuple[float, float, float, float, float]]
    if kind == "HUMERUS":
        segs = [(0, -0.42, 0, 0.42, 1.3)]
    elif kind == "FOREARM":
        segs = [(-0.13, -0.42, -0.1, 0.42, 0.9), (0.13, -0.42, 0.1, 0.42, 0.8)]
    elif kind == "ELBOW":
        segs = [(0, -0.45, 0, 0.0, 1.2), (0, 0.0, 0.25, 0.4, 0.9), (0.08, 0.0, 0.33, 0.38, 0.7)]
    elif kind == "WRIST":
        segs = [(-0.12, 0.1, -0.1, 0.48, 0.9), (0.12, 0.1, 0.1, 0.48, 0.8)]
        segs += [(x, y, x + 0.02, y + 0.02, 0.7) for x in (-0.15, 0.0, 0.15) for y in (-0.05, -0.2)]
    elif kind == "HAND":
        segs = [(x * 0.12, 0.25, x * 0.17, -0.15, 0.55) for x in (-2, -1, 0, 1, 2)]
        segs += [(x * 0.17, -0.18, x * 0.2, -0.42, 0.45) for x in (-2, -1, 0, 1, 2)]
    elif kind == "FINGER":
        segs = [(0, 0.45, 0, 0.1, 0.8), (0, 0.07, 0, -0.2, 0.7), (0, -0.23, 0, -0.42, 0.6)]
    else:  # SHOULDER
        segs = [(0, -0.05, 0.02, 0.45, 1.2), (-0.02, -0.12, 0.02, -0.08, 2.2), (-0.45, -0.35, 0.3, -0.3, 0.7)]
    angle = math.radians(rng.uniform(-20, 20))
    cos, sin = math.cos(angle), math.sin(angle)
    placed = []
    for x0, y0, x1, y1, k in segs:
        (ax, ay), (bx, by) = ((x * cos - y * sin, x * sin + y * cos) for x, y in ((x0, y0), (x1, y1)))
        placed.append((cx + ax * s, cy + ay * s, cx + bx * s, cy + by * s, t * k))
    return placed


def _capsule(draw: ImageDraw.ImageDraw, x0: float, y0: float, x1: float, y1: float, width: float, fill: int) -> None:
    draw.line([(x0, y0), (x1, y1)], fill=fill, width=max(1, int(width)))
    r = width / 2
    for x, y in ((x0, y0), (x1, y1)):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)


def _marker(draw: ImageDraw.ImageDraw, h: int, w: int, rng: np.random.Generator) -> None:
    size = min(h, w) * 0.06
    x = rng.choice([size, w - 2.5 * size])
    y = rng.choice([size, h - 2.5 * size])
    draw.rectangle([x, y, x + size, y + size * 1.4], fill=235)
    draw.rectangle([x + size * 0.3, y + size * 0.2, x + size, y + size * 1.1], fill=40)


def _finding(
    draw: ImageDraw.ImageDraw,
    finding: str,
    segment: tuple[float, float, float, float, float],
    pixels: np.ndarray,
    rng: np.random.Generator,
) -> None:
    x0, y0, x1, y1, thickness = segment
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    nx, ny = -uy, ux
    at = rng.uniform(0.3, 0.7)
    px, py = x0 + (x1 - x0) * at, y0 + (y1 - y0) * at
    if finding == "hardware":
        half = max(length * 0.3, thickness * 1.5)
        plate = thickness * 0.45
        _capsule(draw, px - ux * half, py - uy * half, px + ux * half, py + uy * half, plate, 250)
        for k in np.linspace(-0.8, 0.8, 4):
            sx, sy = px + ux * half * k, py + uy * half * k
            _capsule(
                draw,
                sx - nx * thickness * 0.7,
                sy - ny * thickness * 0.7,
                sx + nx * thickness * 0.7,
                sy + ny * thickness * 0.7,
                max(2.0, thickness * 0.18),
                245,
            )
    elif finding == "fracture":
        tilt = rng.uniform(-0.5, 0.5)
        gx, gy = nx + ux * tilt, ny + uy * tilt
        reach = thickness * 0.9
        gap_level = int(
            np.clip(
                pixels[int(np.clip(py, 0, pixels.shape[0] - 1)), int(np.clip(px, 0, pixels.shape[1] - 1))] * 0.25,
                5,
                60,
            )
        )
        draw.line(
            [(px - gx * reach, py - gy * reach), (px + gx * reach, py + gy * reach)],
            fill=gap_level,
            width=max(3, int(thickness * 0.3)),
        )
    else:
        r = thickness * rng.uniform(0.3, 0.45)
        draw.ellipse([px - r, py - r, px + r, py + r], fill=int(rng.integers(35, 60)))


def _save_png(path: Path, gray: np.ndarray, rng: np.random.Generator) -> None:
    if rng.random() < 0.1:
        gray = 255 - gray
    mode_draw = rng.random()
    if mode_draw < 0.12:
        tint = np.array([1.0, 0.97, 0.94])
        image = Image.fromarray(np.clip(gray[:, :, None] * tint, 0, 255).astype(np.uint8), "RGB")
    elif mode_draw < 0.2:
        image = Image.fromarray(np.dstack([gray, np.full_like(gray, 255)]), "LA")
    else:
        image = Image.fromarray(gray, "L")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, durable=False) as tmp:
        image.save(tmp, format="PNG", compress_level=1)


def _probabilities_beside(output: Path) -> Path:
    return output.with_name(f"{output.stem}.probs.csv")


class MuraDemo(DemoSpec):
    what = "600 studies"
    reference = "the paper's test kappa 0.705"

    def synth(self, data: Path, seed: int, studies: int = 600, **options: Any) -> str:
        counts = synthesize_mura(data, studies=studies, seed=seed, **options)
        return f"train {counts['train']}, valid {counts['valid']} studies"

    def predict_args(self, data: Path, run: Path, output: Path) -> list[str]:
        return [
            str(data / ROOT_NAME / "valid_image_paths.csv"),
            str(output),
            "--data-root",
            str(data),
            "--probs",
            str(_probabilities_beside(output)),
        ]

    def inputs(self, data: Path) -> list[Path]:
        return [data / image.path for image in read_image_paths(data / ROOT_NAME / "valid_image_paths.csv")]

    def evaluate(self, data: Path, output: Path, metrics: dict[str, Any]) -> Evaluation:
        from radlab.tasks.mura.evaluate import evaluate_files, results_table

        truth = data / ROOT_NAME / "valid_labeled_studies.csv"
        official, details = evaluate_files(truth, output, _probabilities_beside(output))
        return Evaluation(official, results_table(details, "MURA, synthetic valid split, study level"), official)

    def scores(self, output: Path) -> np.ndarray:
        return np.array([row.probability for row in read_probabilities(_probabilities_beside(output))])

    def explain_input(self, data: Path) -> Path:
        return self.inputs(data)[0]


DEMO = MuraDemo()
