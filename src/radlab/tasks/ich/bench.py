"""`radlab bench prep|infer --task ich`: DICOM to the three-window stack at 480 px, and the whole prediction,
the seeds' way against radlab's.

Reference (the seed solutions): pydicom's `pixel_array`, a float HU image, each window computed on its own
with `np.clip`, then the black-border crop and the resize. radlab: the loader training uses
(`load_windows`: one lookup table over the stored integer values gives all three windows). Both run in
this one process with OpenCV on one thread, so the ratio is per core.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
import torch

from radlab.core.bench import compare_interleaved, comparison_fields, infer_report, machine, model_flops, scratch_copy
from radlab.core.config import config_to_yaml
from radlab.core.console import info
from radlab.core.errors import RadlabError
from radlab.core.io.atomic import atomic_write_text
from radlab.core.models import save_weights
from radlab.tasks.ich.config import IchConfig, load_ich_config
from radlab.tasks.ich.data import load_windows
from radlab.tasks.ich.embeddings import TTA
from radlab.tasks.ich.export import export
from radlab.tasks.ich.formats import TEST_IMAGES, TRAIN_IMAGES, read_submission
from radlab.tasks.ich.inference import sequence_probs
from radlab.tasks.ich.metadata import SliceInfo, read_metadata, sequences
from radlab.tasks.ich.model import SequenceModel, build_slice_model, slice_embeddings
from radlab.tasks.ich.predict import load_run, predict_folder
from radlab.tasks.ich.recipe import snapshot_path
from radlab.tasks.ich.synth import synthesize_ich

WINDOWS = ((40, 80), (80, 200), (40, 380))


def reference_windows(path: Path, size: int) -> np.ndarray:
    """The seeds' preprocessing of one slice, written plainly."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.float64)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    if int(ds.PixelRepresentation) == 0 and intercept > -100:
        pixels = pixels + 1000
        pixels[pixels >= 4096] -= 4096
        intercept = -1000.0
    hu = pixels * slope + intercept
    channels = []
    for centre, width in WINDOWS:
        low = centre - width / 2
        channels.append(np.rint(np.clip((hu - low) / width, 0, 1) * 255).astype(np.uint8))
    image = np.stack(channels, axis=-1)
    rows = np.flatnonzero(image.max(axis=2).any(axis=1))
    cols = np.flatnonzero(image.max(axis=2).any(axis=0))
    if len(rows) and len(cols):
        cropped = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        side = max(cropped.shape[:2])
        image = np.zeros((side, side, 3), dtype=np.uint8)
        image[: cropped.shape[0], : cropped.shape[1]] = cropped
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def bench_prep(images: int = 60, repeats: int = 3, size: int = 480, seed: int = 0) -> dict[str, Any]:
    """Slices per second of both ways on the same synthetic 512 px CT slices, and their largest difference."""
    with tempfile.TemporaryDirectory(prefix="radlab-bench-") as scratch:
        series = max(5, images // 10 + 1)
        synthesize_ich(scratch, series=series, seed=seed, size=512, test_fraction=0.2, workers=2)
        files = sorted((Path(scratch) / TRAIN_IMAGES).glob("*.dcm"))
        readable = []
        for path in files:
            try:
                load_windows(path, size)
                readable.append(path)
            except Exception:  # the synthetic set's deliberately corrupt slice
                continue
        chosen = readable[:images]
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            comparison = compare_interleaved(
                lambda: np.stack([reference_windows(p, size) for p in chosen]),
                lambda: np.stack([load_windows(p, size) for p in chosen]),
                items=len(chosen),
                repeats=repeats,
            )
        finally:
            cv2.setNumThreads(threads)
    difference = np.abs(comparison.reference_output.astype(int) - comparison.radlab_output.astype(int))
    return {
        "task": "ich",
        "what": f"{len(chosen)} CT slices (512 px, int16) to the 3-window stack at {size} px, one core",
        **comparison_fields(
            comparison,
            max_abs_grey_level_diff=int(difference.max()),
            max_abs_prob_diff=float(difference.max()) / 255.0,
            label_agreement=float(np.mean(difference <= 1)),
        ),
        **machine(),
        "threads": 1,
        "torch_threads": torch.get_num_threads(),
    }


def bench_infer(
    images: int = 8,
    repeats: int = 3,
    config_name: str | None = "paper",
    overrides: list[str] | tuple[str, ...] = (),
    model_dir: Path | None = None,
    engines: tuple[str, ...] = ("torch", "onnx", "int8"),
    workers: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Slices per second and agreement of each radlab engine's `ich predict` against the seeds' way, on whole
    series holding at least `images` slices. Reference: one series at a time, each slice decoded by pydicom
    into a float HU image and windowed window by window, eager fp32 in contiguous memory under
    `torch.no_grad`, every TTA variant, then the sequence model. radlab: predict_folder itself; the ONNX
    engines are exported into a scratch copy of the run, int8 calibrated on synthetic training slices."""
    config = load_run(model_dir).config if model_dir else load_ich_config(config_name, list(overrides))
    size = config.data.image_size
    workers = config.predict.num_workers if workers is None else workers
    with tempfile.TemporaryDirectory(prefix="radlab-bench-") as scratch_name:
        scratch = Path(scratch_name)
        folder, infos = _series_folder(scratch, images, seed)
        run = scratch_copy(model_dir, scratch) if model_dir else _temporary_run(scratch / "run", config, seed)
        if {"onnx", "int8"} & set(engines):
            export(run, int8="int8" in engines, calibration=32, data_root=scratch / "data", validate=False)
        _, model, snapshots, _ = load_run(run)
        groups = sequences(infos)
        order = [i.image for i in infos]
        results: dict[str, Any] = {}
        for engine in engines:
            info(f"bench infer ich: reference against radlab {engine}, {len(infos)} slices in {len(groups)} series")
            loaded = load_run(run, engine)
            comparison = compare_interleaved(
                lambda: _reference(model, snapshots, infos, groups, size, config.embeddings.tta),
                lambda loaded=loaded: _radlab(folder, scratch / "radlab.csv", run, loaded, order, workers),
                items=len(infos),
                repeats=repeats,
            )
            ref, rad = comparison.reference_output, comparison.radlab_output
            results[engine] = comparison_fields(
                comparison,
                max_abs_prob_diff=float(np.abs(ref - rad).max()),
                label_agreement=float(np.mean((ref > 0.5) == (rad > 0.5))),
            )
        flops = model_flops(model, torch.zeros(1, 3, size, size, dtype=torch.uint8)) * len(config.embeddings.tta)
    return infer_report(
        "ich",
        results,
        "slice",
        flops,
        items="slices (6 probabilities each)",
        slices=len(infos),
        series=len(groups),
        tta=list(config.embeddings.tta),
        repeats=repeats,
        backbone=config.model.backbone,
        image_size=size,
        loader_workers=workers,
    )


def _series_folder(scratch: Path, images: int, seed: int) -> tuple[Path, list[SliceInfo]]:
    """A folder of whole synthetic test series (readable slices only) holding at least `images` slices."""
    synthesize_ich(scratch / "data", series=max(6, images // 4), seed=seed, size=512, test_fraction=0.5, workers=2)
    infos, _ = read_metadata(sorted((scratch / "data" / TEST_IMAGES).glob("*.dcm")))
    folder = scratch / "input"
    folder.mkdir()
    chosen: list[SliceInfo] = []
    for group in sequences(infos):
        if len(chosen) >= images:
            break
        for k in group:
            try:
                load_windows(infos[k].path, 32)
            except RadlabError:  # the synthetic set's deliberately corrupt slice
                continue
            shutil.copy(infos[k].path, folder / infos[k].path.name)
            chosen.append(infos[k])
    kept, _ = read_metadata(sorted(folder.glob("*.dcm")))
    return folder, kept


def _temporary_run(run_dir: Path, config: IchConfig, seed: int) -> Path:
    """Seeded fresh networks: the slice classifier and one sequence-model snapshot."""
    torch.manual_seed(seed)
    (run_dir / "slice").mkdir(parents=True)
    atomic_write_text(run_dir / "config.yaml", config_to_yaml(config))
    model = build_slice_model(config, initialise=False)
    save_weights(run_dir / "slice" / "model.safetensors", model.state_dict(), {"task": "ich"})
    sequence = SequenceModel(int(model.backbone.num_features))
    save_weights(snapshot_path(run_dir / "sequence", 1), sequence.state_dict(), {"task": "ich"})
    return run_dir


def _reference(
    model: Any, snapshots: list, infos: list[SliceInfo], groups: list[list[int]], size: int, tta: Sequence[str]
) -> np.ndarray:
    """The seeds' loop: series by series, pydicom and float windows per slice, eager fp32, no_grad."""
    model = model.eval().to(memory_format=torch.contiguous_format)
    probs = np.zeros((len(infos), 6))
    with torch.no_grad():
        for group in groups:
            pixels = [torch.from_numpy(reference_windows(infos[k].path, size)).permute(2, 0, 1) for k in group]
            batch = torch.stack(pixels).contiguous()
            features = sum(slice_embeddings(model, TTA[name](batch)).float() for name in tta) / len(tta)
            embeddings = np.zeros((len(infos), features.shape[1]), dtype=np.float32)
            embeddings[group] = features.numpy()
            probs[group] = sequence_probs(snapshots, embeddings, [group], batch_size=1)[group]
    return np.clip(probs, 1e-5, 1 - 1e-5)


def _radlab(folder: Path, out: Path, run: Path, loaded: Any, order: list[str], workers: int) -> np.ndarray:
    """`predict_folder` itself, its run loaded once beforehand (as the reference's is); rows in `order`."""
    predict_folder(folder, out, [run], num_workers=workers, device="cpu", loaded=[loaded])
    images, probs = read_submission(out)
    position = {image: k for k, image in enumerate(images)}
    return probs[[position[image] for image in order]]
