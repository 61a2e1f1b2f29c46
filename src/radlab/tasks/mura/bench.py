"""`radlab bench infer|prep --task mura`: radlab against the seeds' way, on the same synthetic inputs.

Reference (the seed repos): eager fp32 in contiguous memory under `torch.no_grad`, one study at a time,
every image decoded with PIL every time. radlab: exactly what `radlab mura predict` runs (batches across
studies, a prefetching loader, channels_last, `torch.inference_mode`; ONNX Runtime for the onnx / int8
engines). Both use the same weights and the same resize, so their probabilities must agree.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core.bench import model_flops
from radlab.core.bench.report import cache_epochs, cache_report
from radlab.core.bench.spec import BenchInputs, BenchSpec, TrainPlan
from radlab.core.engine.run_dir import RunDir
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.cache import cached_image_dataset
from radlab.core.io.images import read_image
from radlab.core.models import save_weights
from radlab.core.transforms import build_image_transform
from radlab.tasks.mura import MuraConfig
from radlab.tasks.mura.data import group_studies
from radlab.tasks.mura.formats import ImagePath, read_image_paths, read_probabilities, split_csvs
from radlab.tasks.mura.model import build_model
from radlab.tasks.mura.predict import Loaded, predict_csv
from radlab.tasks.mura.synth import synthesize_mura


def _paths_csv(folder: Path, images: int, seed: int) -> tuple[Path, Path]:
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


def read_image_paths_list(paths: list[str]) -> list[ImagePath]:
    return [ImagePath(k + 1, p) for k, p in enumerate(paths)]


def bench_prep(images: int = 200, repeats: int = 3, size: int = 320, seed: int = 0) -> dict[str, Any]:
    """A training epoch's preprocessing (decode, resize, the paper's flip and rotation): decoding every time
    (the reference) against reading radlab's cache; and a plain epoch (no augmentation) both ways."""
    with tempfile.TemporaryDirectory(prefix="radlab-bench-") as scratch_name:
        scratch = Path(scratch_name)
        root, paths_csv = _paths_csv(scratch / "data", images, seed)
        files = [root / r.path for r in read_image_paths(paths_csv)]
        plain = build_image_transform(size)

        def training_transform() -> Any:
            return build_image_transform(size, train=True, hflip=0.5, rotate_deg=30, seed=seed)

        started = _now()
        cached = cached_image_dataset(files, scratch / "cache", size)
        build_seconds = _now() - started

        def decode_every_time(train: bool) -> np.ndarray:
            transform = training_transform() if train else plain
            return np.stack([transform(read_image(p)).numpy() for p in files])

        def read_cache(train: bool) -> np.ndarray:
            cached.augment = training_transform() if train else None
            return np.stack([cached[i]["image"].numpy() for i in range(len(cached))])

        epochs = cache_epochs(decode_every_time, read_cache, len(files), repeats)
    same = all(np.array_equal(c.reference_output, c.radlab_output) for c in epochs)
    what = f"a training epoch of {len(files)} radiographs: decode, resize to {size} px, flip, rotate"
    return cache_report("mura", what, epochs, len(files) / build_seconds, same)


def _now() -> float:
    return time.perf_counter()


class MuraBench(BenchSpec):
    unit = "image"
    default_items = 48
    calibration = 32
    train = TrainPlan(
        synth=lambda items: {"studies": max(24, items + 14)},
        epoch_items=36808,
        item="radiograph",
        overrides=("train.members=null",),
    )

    def inputs(self, folder: Path, images: int, seed: int) -> BenchInputs:
        root, paths_csv = _paths_csv(folder, images, seed)
        paths = [r.path for r in read_image_paths(paths_csv)]
        return BenchInputs(root, len(paths), (paths_csv, paths))

    def fresh_run(self, run: RunDir, config: MuraConfig, seed: int) -> None:
        save_weights(run.weights, build_model(config, initialise=False).state_dict(), {"task": "mura"})

    def reference(self, loaded: Loaded, inputs: BenchInputs) -> np.ndarray:
        """The seeds' loop: per study, decode each image with PIL, stack, one eager fp32 forward pass."""
        config, model = loaded
        root, paths = inputs.data_root, inputs.payload[1]
        transform = build_image_transform(config.data.image_size, resize=config.data.resize)  # radlab's resize
        groups = group_studies(read_image_paths_list(paths))
        probs = np.empty(len(groups.studies))
        model = model.eval().to(inputs.device).to(memory_format=torch.contiguous_format)
        with torch.no_grad():
            for s in range(len(groups.studies)):
                members = [paths[i] for i in np.flatnonzero(groups.image_study == s)]
                batch = torch.stack([transform(read_image(root / p)) for p in members]).float().to(inputs.device)
                probs[s] = torch.sigmoid(model(batch)).mean().item()
        return probs

    def radlab(self, loaded: Loaded, inputs: BenchInputs, scratch: Path, workers: int) -> np.ndarray:
        """`predict_csv` itself, with its model loaded once beforehand (as the reference's is)."""
        out, probs = scratch / "radlab.csv", scratch / "radlab.probs.csv"
        run = scratch / "run"
        predict_csv(inputs.payload[0], out, run, inputs.data_root, probabilities_csv=probs, num_workers=workers,
                    device=inputs.device, loaded=loaded)  # fmt: skip
        return np.array([row.probability for row in read_probabilities(probs)])

    def agreement(self, reference: np.ndarray, radlab: np.ndarray, config: MuraConfig) -> dict[str, Any]:
        threshold = config.predict.threshold
        return {
            "max_abs_prob_diff": float(np.abs(reference - radlab).max()),
            "label_agreement": float(np.mean((reference > threshold) == (radlab > threshold))),
        }

    def flops(self, loaded: Loaded, inputs: BenchInputs) -> float:
        config, model = loaded
        size = config.data.image_size
        return model_flops(model, torch.rand(1, 1, size, size) * 255)

    def details(self, config: MuraConfig, inputs: BenchInputs) -> dict[str, Any]:
        return {
            "images": inputs.items,
            "studies": len(group_studies(read_image_paths_list(inputs.payload[1])).studies),
            "backbone": config.model.backbone,
            "image_size": config.data.image_size,
        }

    prep = staticmethod(bench_prep)


BENCH = MuraBench()
