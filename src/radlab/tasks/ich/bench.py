"""`radlab bench prep|infer --task ich`: DICOM to the three-window stack at 480 px, and the whole prediction,
the seeds' way against radlab's.

Prep. Reference (the seed solutions): pydicom's `pixel_array`, a float HU image, each window computed on
its own with `np.clip`, then the black-border crop and the resize. radlab: the loader training uses
(`load_windows`: one lookup table over the stored integer values gives all three windows). Both run in
this one process with OpenCV on one thread, so the ratio is per core.

Infer, on whole synthetic test series. Reference: one series at a time, each slice decoded by pydicom into
a float HU image and windowed window by window, eager fp32 in contiguous memory under `torch.no_grad`,
every TTA variant, then the sequence model. radlab: `predict_folder` itself (ONNX Runtime embedding the
slices for the onnx / int8 engines), its run loaded once beforehand, as the reference's is.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
import torch

from radlab.core.bench import compare_interleaved, comparison_fields, machine, model_flops
from radlab.core.bench.spec import BenchInputs, BenchSpec, TrainPlan
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabError
from radlab.core.models import save_weights
from radlab.tasks.ich import IchConfig
from radlab.tasks.ich.data import SliceInfo, load_windows, read_metadata, sequences
from radlab.tasks.ich.formats import TEST_IMAGES, TRAIN_IMAGES, read_submission
from radlab.tasks.ich.model import (
    TTA,
    SequenceModel,
    build_slice_model,
    embedding_size,
    sequence_probs,
    slice_embeddings,
    snapshot_path,
)
from radlab.tasks.ich.predict import LoadedRun, predict_folder
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


class IchBench(BenchSpec):
    unit = "slice"
    default_items = 8
    calibration = 32
    train = TrainPlan(
        synth=lambda items: {"series": max(10, items // 8 + 4)},
        epoch_items=752803 * 4 // 5,
        item="slice (the slice CNN, one fold: 4/5 of stage-2 train)",
        overrides=("train.snapshot_epochs=null", "train.snapshots=null"),
        cpu_overrides=("train.batch_size=4",),
        stage="slice",
    )

    def inputs(self, folder: Path, images: int, seed: int) -> BenchInputs:
        """Whole synthetic test series (readable slices only) holding at least `images` slices, copied into
        FOLDER/bench_input/; the payload is that folder and the header table of its slices."""
        synthesize_ich(folder, series=max(6, images // 4), seed=seed, size=512, test_fraction=0.5, workers=2)
        infos, _ = read_metadata(sorted((folder / TEST_IMAGES).glob("*.dcm")))
        chosen = folder / "bench_input"
        chosen.mkdir()
        count = 0
        for group in sequences(infos):
            if count >= images:
                break
            for k in group:
                try:
                    load_windows(infos[k].path, 32)
                except RadlabError:  # the synthetic set's deliberately corrupt slice
                    continue
                shutil.copy(infos[k].path, chosen / infos[k].path.name)
                count += 1
        kept, _ = read_metadata(sorted(chosen.glob("*.dcm")))
        return BenchInputs(folder, len(kept), (chosen, kept))

    def fresh_run(self, run: RunDir, config: IchConfig, seed: int) -> None:
        """Seeded fresh networks: the slice classifier and one sequence-model snapshot."""
        (run.root / "slice").mkdir(parents=True)
        model = build_slice_model(config, initialise=False)
        save_weights(run.root / "slice" / "model.safetensors", model.state_dict(), {"task": "ich"})
        sequence = SequenceModel(embedding_size(model))
        save_weights(snapshot_path(run.root / "sequence", 1), sequence.state_dict(), {"task": "ich"})

    def reference(self, loaded: LoadedRun, inputs: BenchInputs) -> np.ndarray:
        """The seeds' loop: series by series, pydicom and float windows per slice, eager fp32, no_grad."""
        infos: list[SliceInfo] = inputs.payload[1]
        size, tta = loaded.config.data.image_size, loaded.config.embeddings.tta
        model = loaded.model.eval().to(inputs.device).to(memory_format=torch.contiguous_format)
        probs = np.zeros((len(infos), 6))
        with torch.no_grad():
            for group in sequences(infos):
                pixels = [torch.from_numpy(reference_windows(infos[k].path, size)).permute(2, 0, 1) for k in group]
                batch = torch.stack(pixels).to(inputs.device)
                features = torch.stack([slice_embeddings(model, TTA[name](batch)).float() for name in tta]).mean(0)
                embeddings = np.zeros((len(infos), features.shape[1]), dtype=np.float32)
                embeddings[group] = features.cpu().numpy()
                probs[group] = sequence_probs(loaded.snapshots, embeddings, [group], batch_size=1)[group]
        return np.clip(probs, 1e-5, 1 - 1e-5)

    def radlab(self, loaded: LoadedRun, inputs: BenchInputs, scratch: Path, workers: int) -> np.ndarray:
        """`predict_folder` itself, its run loaded once beforehand (as the reference's is); rows in slice order."""
        folder, infos = inputs.payload
        out = scratch / "radlab.csv"
        predict_folder(folder, out, [scratch / "run"], num_workers=workers, device=inputs.device, loaded=[loaded])
        images, probs = read_submission(out)
        position = {image: k for k, image in enumerate(images)}
        return probs[[position[info.image] for info in infos]]

    def agreement(self, reference: np.ndarray, radlab: np.ndarray, config: IchConfig) -> dict[str, Any]:
        return {
            "max_abs_prob_diff": float(np.abs(reference - radlab).max()),
            "label_agreement": float(np.mean((reference > 0.5) == (radlab > 0.5))),
        }

    def flops(self, loaded: LoadedRun, inputs: BenchInputs) -> float:
        """One slice through the classifier's trunk, once per TTA variant (the sequence model is negligible)."""
        size = loaded.config.data.image_size
        single = model_flops(loaded.model, torch.zeros(1, 3, size, size, dtype=torch.uint8))
        return single * len(loaded.config.embeddings.tta)

    def details(self, config: IchConfig, inputs: BenchInputs) -> dict[str, Any]:
        infos = inputs.payload[1]
        return {
            "items": "slices (6 probabilities each)",
            "slices": len(infos),
            "series": len(sequences(infos)),
            "tta": list(config.embeddings.tta),
            "backbone": config.model.backbone,
            "image_size": config.data.image_size,
        }

    prep = staticmethod(bench_prep)


BENCH = IchBench()
