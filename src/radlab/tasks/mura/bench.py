"""`radlab bench infer|prep --task mura`: radlab against the seeds' way, on the same synthetic inputs.

Reference (the seed repos): eager fp32 in contiguous memory under `torch.no_grad`, one study at a time,
every image decoded with PIL every time. radlab: exactly what `radlab mura predict` runs (batches across
studies, a prefetching loader, channels_last, `torch.inference_mode`; ONNX Runtime for the onnx / int8
engines). Both use the same weights and the same resize, so their probabilities must agree.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core.bench import compare_interleaved, comparison_fields, infer_report, machine, model_flops
from radlab.core.config import config_to_yaml
from radlab.core.console import info
from radlab.core.engine.run_dir import RunDir
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.cache import cached_image_dataset
from radlab.core.io.images import read_image
from radlab.core.models import save_weights
from radlab.core.transforms import build_image_transform
from radlab.tasks.mura.config import MuraConfig, load_mura_config
from radlab.tasks.mura.data import group_studies
from radlab.tasks.mura.export import export
from radlab.tasks.mura.formats import ImagePath, read_image_paths, read_probabilities, split_csvs
from radlab.tasks.mura.model import build_model, load_model
from radlab.tasks.mura.predict import load_engine, predict_csv
from radlab.tasks.mura.synth import synthesize_mura


def _inputs(folder: Path, images: int, seed: int) -> tuple[Path, Path]:
    """Synthetic validation studies holding at least `images` images: (data root, image-paths CSV)."""
    studies = max(14, int(images * 1.6))
    synthesize_mura(folder, studies=studies, seed=seed, valid_fraction=0.5, workers=2)
    paths_csv, _ = split_csvs(folder, "valid")
    rows = read_image_paths(paths_csv)
    groups = group_studies(rows)
    keep_studies = set(groups.image_study[: min(images, len(rows))].tolist())
    chosen = [r.path for r, s in zip(rows, groups.image_study, strict=True) if s in keep_studies]
    out = folder / "bench_paths.csv"
    atomic_write_text(out, "".join(f"{p}\n" for p in chosen))
    return folder, out


def _temporary_run(folder: Path, config: MuraConfig, model_dir: Path | None) -> Path:
    """A run directory for predict: a copy of `model_dir`'s config and weights, or a seeded fresh model."""
    run = RunDir(folder / "run")
    run.root.mkdir(parents=True)
    if model_dir is not None:
        shutil.copy(RunDir(model_dir).config, run.config)
        shutil.copy(RunDir(model_dir).weights, run.weights)
        return run.root
    torch.manual_seed(0)
    atomic_write_text(run.config, config_to_yaml(config))
    save_weights(run.weights, build_model(config, initialise=False).state_dict(), {"task": "mura"})
    return run.root


def _reference(model: torch.nn.Module, root: Path, paths: list[str], size: int, resize: str) -> np.ndarray:
    """The seeds' loop: per study, decode each image with PIL, stack, one eager fp32 forward pass."""
    transform = build_image_transform(size, resize=resize)  # the same resize as radlab, for agreement
    groups = group_studies(read_image_paths_list(paths))
    probs = np.empty(len(groups.studies))
    model = model.eval().to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        for s in range(len(groups.studies)):
            members = [paths[i] for i in np.flatnonzero(groups.image_study == s)]
            batch = torch.stack([transform(read_image(root / p)) for p in members]).float().contiguous()
            probs[s] = torch.sigmoid(model(batch)).mean().item()
    return probs


def read_image_paths_list(paths: list[str]) -> list[ImagePath]:
    return [ImagePath(k + 1, p) for k, p in enumerate(paths)]


def _radlab(run: Path, root: Path, paths_csv: Path, scratch: Path, loaded, workers: int) -> np.ndarray:
    """`predict_csv` itself, with its model loaded once beforehand (as the reference's is)."""
    out, probs = scratch / "radlab.csv", scratch / "radlab.probs.csv"
    predict_csv(paths_csv, out, run, root, probabilities_csv=probs, num_workers=workers, device="cpu", loaded=loaded)
    return np.array([row.probability for row in read_probabilities(probs)])


def bench_infer(
    images: int = 48,
    repeats: int = 3,
    config_name: str | None = "paper",
    overrides: list[str] | tuple[str, ...] = (),
    model_dir: Path | None = None,
    engines: tuple[str, ...] = ("torch", "onnx", "int8"),
    workers: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Images per second, agreement and memory of each radlab engine against the reference; the ONNX engines
    are exported into the scratch run, int8 calibrated on synthetic training images."""
    config = load_model(model_dir)[0] if model_dir else load_mura_config(config_name, list(overrides))
    size, resize = config.data.image_size, config.data.resize
    workers = config.predict.num_workers if workers is None else workers
    with tempfile.TemporaryDirectory(prefix="radlab-bench-") as scratch_name:
        scratch = Path(scratch_name)
        root, paths_csv = _inputs(scratch / "data", images, seed)
        paths = [r.path for r in read_image_paths(paths_csv)]
        run = _temporary_run(scratch, config, model_dir)
        _, model = load_model(run)
        if {"onnx", "int8"} & set(engines):
            export(run, int8="int8" in engines, calibration=32, data_root=root, validate=False)
        results: dict[str, Any] = {}
        for engine in engines:
            info(f"bench infer mura: reference against radlab {engine}, {len(paths)} images, {repeats} repeats")
            loaded = load_engine(run, engine)
            comparison = compare_interleaved(
                lambda: _reference(model, root, paths, size, resize),
                lambda loaded=loaded: _radlab(run, root, paths_csv, scratch, loaded, workers),
                items=len(paths),
                repeats=repeats,
            )
            ref, rad = comparison.reference_output, comparison.radlab_output
            threshold = config.predict.threshold
            results[engine] = comparison_fields(
                comparison,
                max_abs_prob_diff=float(np.abs(ref - rad).max()),
                label_agreement=float(np.mean((ref > threshold) == (rad > threshold))),
            )
        flops = model_flops(model, torch.rand(1, 1, size, size) * 255)
    return infer_report(
        "mura",
        results,
        "image",
        flops,
        images=len(paths),
        studies=len(group_studies(read_image_paths_list(paths)).studies),
        repeats=repeats,
        backbone=config.model.backbone,
        image_size=size,
        loader_workers=workers,
    )


def bench_prep(images: int = 200, repeats: int = 3, size: int = 320, seed: int = 0) -> dict[str, Any]:
    """A training epoch's preprocessing (decode, resize, the paper's flip and rotation): decoding every time
    (the reference) against reading radlab's cache; and a plain epoch (no augmentation) both ways."""
    with tempfile.TemporaryDirectory(prefix="radlab-bench-") as scratch_name:
        scratch = Path(scratch_name)
        root, paths_csv = _inputs(scratch / "data", images, seed)
        files = [root / r.path for r in read_image_paths(paths_csv)]
        plain = build_image_transform(size)

        def training_transform() -> Any:
            return build_image_transform(size, train=True, hflip=0.5, rotate_deg=30, seed=seed)

        started = _now()
        cached = cached_image_dataset(files, scratch / "cache", size)
        build_seconds = _now() - started

        def decode_every_time(transform: Any) -> np.ndarray:
            return np.stack([transform(read_image(p)).numpy() for p in files])

        def read_cache(transform: Any) -> np.ndarray:
            cached.augment = transform
            return np.stack([cached[i]["image"].numpy() for i in range(len(cached))])

        training = compare_interleaved(
            lambda: decode_every_time(training_transform()),
            lambda: read_cache(training_transform()),
            items=len(files),
            repeats=repeats,
        )
        evaluation = compare_interleaved(
            lambda: decode_every_time(plain), lambda: read_cache(None), items=len(files), repeats=repeats
        )
        same = bool(
            np.array_equal(training.reference_output, training.radlab_output)
            and np.array_equal(evaluation.reference_output, evaluation.radlab_output)
        )
    return {
        "task": "mura",
        "what": f"a training epoch of {len(files)} radiographs: decode, resize to {size} px, flip, rotate",
        **comparison_fields(training),
        "plain_epoch": comparison_fields(evaluation),
        "cache_build_items_per_s": len(files) / build_seconds,
        "max_abs_prob_diff": 0.0 if same else None,
        "label_agreement": 1.0 if same else None,
        "identical_pixels": same,
        **machine(),
    }


def _now() -> float:
    return time.perf_counter()
