"""`radlab bench infer|prep --task pneumonia`: radlab's predict against the seeds' way, on the same DICOMs.

Reference (seed 003 ran its detector image by image on a low-power board): one image at a time, decoded by
pydicom in the main process, eager fp32 in contiguous memory under `torch.no_grad`, then the same box
selection. radlab: exactly what `radlab pneumonia predict` runs (batches, a prefetching loader,
`torch.inference_mode`). Same weights and post-processing, so the kept boxes and their scores must agree.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch

from radlab.core.bench import model_flops
from radlab.core.bench.report import cache_epochs, cache_report
from radlab.core.bench.spec import BenchInputs, BenchSpec, TrainPlan
from radlab.core.engine.run_dir import RunDir
from radlab.core.models import save_weights
from radlab.tasks.pneumonia import PneumoniaConfig
from radlab.tasks.pneumonia.data import DetectionTransform, PneumoniaDataset, xywh_to_xyxy
from radlab.tasks.pneumonia.formats import TRAIN_IMAGES, read_submission
from radlab.tasks.pneumonia.model import (
    DenseDetector,
    PneumoniaDetector,
    PostprocessFile,
    opacity_weight,
    select,
    to_original,
)
from radlab.tasks.pneumonia.predict import Loaded, predict_folder
from radlab.tasks.pneumonia.synth import synthesize_pneumonia

Found = dict[str, tuple[np.ndarray, np.ndarray]]


def _run(scratch: Path) -> RunDir:
    """The run the driver measures: it lives beside the inputs' data folder in the scratch folder (a fresh run
    or the copy of a trained one)."""
    return RunDir(scratch / "run")


def bench_prep(images: int = 100, repeats: int = 3, size: int = 512, seed: int = 0) -> dict[str, Any]:
    """A training epoch's preprocessing (DICOM decode, resize, the recipe's affine, flip, gamma, noise, blur,
    with the boxes): seed 003's way, pydicom decoding every image every epoch, against reading radlab's
    preprocessing cache; and a plain epoch (no augmentation) both ways."""
    with tempfile.TemporaryDirectory(prefix="radlab-bench-") as scratch_name:
        scratch = Path(scratch_name)
        root = scratch / "data"
        synthesize_pneumonia(root, patients=max(8, int(images / 0.8) + 1), seed=seed, workers=2)
        augment = PneumoniaConfig.model_validate({}).augment
        ids = list(PneumoniaDataset(root, "train").ids)[:images]

        def transform(train: bool) -> DetectionTransform:
            return DetectionTransform(size, train, augment, seed)

        started = time.perf_counter()
        cached = PneumoniaDataset(root, "train", transform(False), ids, scratch / "cache")
        build_seconds = time.perf_counter() - started
        boxes = [xywh_to_xyxy(b) for b in cached.truth]

        def decode_every_time(train: bool) -> tuple[np.ndarray, list[np.ndarray]]:
            step = transform(train)
            out = [
                step(pydicom.dcmread(path).pixel_array, truth) for path, truth in zip(cached.paths, boxes, strict=True)
            ]
            return np.stack([image.numpy() for image, _ in out]), [b.numpy() for _, b in out]

        def read_cache(train: bool) -> tuple[np.ndarray, list[np.ndarray]]:
            cached.transform = transform(train)
            out = [cached[i] for i in range(len(cached))]
            return np.stack([item["image"].numpy() for item in out]), [item["boxes"].numpy() for item in out]

        epochs = cache_epochs(decode_every_time, read_cache, len(ids), repeats)
    pixels_same = all(np.array_equal(c.reference_output[0], c.radlab_output[0]) for c in epochs)
    box_diff = max(
        (float(np.abs(a - b).max(initial=0.0)) if a.shape == b.shape else float("inf"))
        for c in epochs
        for a, b in zip(c.reference_output[1], c.radlab_output[1], strict=True)
    )
    what = f"a training epoch of {len(ids)} 1024 px JPEG DICOMs with boxes: decode, resize to {size} px, augment"
    return cache_report("pneumonia", what, epochs, len(ids) / build_seconds, pixels_same, max_abs_box_diff_px=box_diff)


class PneumoniaBench(BenchSpec):
    unit = "image"
    default_items = 16
    calibration = 16
    train = TrainPlan(
        synth=lambda items: {"patients": max(16, 2 * items)},
        epoch_items=26684 * 3 // 4,
        item="image (one fold: 3/4 of stage-2 train)",
        cpu_overrides=("train.batch_size=2",),
    )

    def inputs(self, folder: Path, images: int, seed: int) -> BenchInputs:
        """`images` synthetic DICOMs (JPEG baseline, 1024 px, as the challenge's) copied from the training set
        synthesised in `folder` (which export calibrates on) into `folder/input`."""
        synthesize_pneumonia(folder, patients=max(8, images + 4), seed=seed, workers=2)
        chosen = folder / "input"
        chosen.mkdir()
        for path in sorted((folder / TRAIN_IMAGES).glob("*.dcm"))[:images]:
            shutil.copy(path, chosen / path.name)
        paths = sorted(chosen.glob("*.dcm"))
        return BenchInputs(folder, len(paths), (chosen, paths))

    def fresh_run(self, run: RunDir, config: PneumoniaConfig, seed: int) -> None:
        """A seeded fresh detector with a score threshold near 0, so that both ways keep boxes to compare."""
        state = PneumoniaDetector(config, initialise=False).state_dict()
        # Untrained, the focal-loss prior scores every anchor near 0.01, under the detector's own floor, and nearly
        # alike: centre the classification bias and spread its weights, so that there are distinct boxes to compare.
        head = "retinanet.head.classification_head.cls_logits.1"
        state[f"{head}.bias"] = torch.zeros_like(state[f"{head}.bias"])
        state[f"{head}.weight"] = state[f"{head}.weight"] * 300
        save_weights(run.weights, state, {"task": "pneumonia"})
        post = config.postprocess
        run.write_json(
            "postprocess.json",
            {
                "score_threshold": 1e-3,
                "relative_prune": post.relative_prune,
                "nms_iou": post.nms_iou,
                "use_global": False,
            },
        )

    def reference(self, loaded: Loaded, inputs: BenchInputs) -> Found:
        """The seeds' loop: per image, pydicom's pixel_array, the same resize, one eager fp32 forward pass, the
        run's post-processing."""
        config, model = loaded
        post = _run(inputs.data_root.parent).read_json("postprocess.json", PostprocessFile)
        transform = DetectionTransform(config.data.image_size)
        model = model.eval().to(inputs.device).to(memory_format=torch.contiguous_format)
        found: Found = {}
        with torch.no_grad():
            for path in inputs.payload[1]:
                pixels = pydicom.dcmread(path).pixel_array
                image, _ = transform(pixels, np.zeros((0, 4)))
                out = model(image[None].to(inputs.device), detect=True)
                detected = {key: value.cpu() for key, value in out["detections"][0].items()}
                boxes = to_original(detected["boxes"].numpy(), config.data.image_size, pixels.shape)
                weight = float(opacity_weight(out["global"].cpu()).numpy()[0]) if post["use_global"] else None
                kept, scores = select(boxes, detected["scores"].numpy(), post["score_threshold"],
                                      post["relative_prune"], weight)  # fmt: skip
                found[path.stem] = (np.round(kept, 1), np.round(scores, 4))
        return found

    def radlab(self, loaded: Loaded, inputs: BenchInputs, scratch: Path, workers: int) -> Found:
        """`predict_folder` itself, its detector loaded once beforehand (as the reference's is)."""
        out = scratch / "radlab.csv"
        predict_folder(
            inputs.payload[0], out, [_run(scratch).root], num_workers=workers, device=inputs.device, loaded=[loaded]
        )
        return {patient: (p.boxes, p.scores) for patient, p in read_submission(out).items()}

    def agreement(self, reference: Found, radlab: Found, config: PneumoniaConfig) -> dict[str, Any]:
        """Images whose kept boxes match in number; the largest score and box-corner differences among them."""
        same, score_diff, box_diff = 0, 0.0, 0.0
        for patient, (boxes, scores) in reference.items():
            other_boxes, other_scores = radlab[patient]
            if len(scores) != len(other_scores):
                continue
            same += 1
            if len(scores):
                order, other_order = np.argsort(-scores, kind="stable"), np.argsort(-other_scores, kind="stable")
                score_diff = max(score_diff, float(np.abs(scores[order] - other_scores[other_order]).max()))
                box_diff = max(box_diff, float(np.abs(boxes[order] - other_boxes[other_order]).max()))
        return {
            "max_abs_prob_diff": score_diff,
            "label_agreement": same / max(1, len(reference)),
            "max_abs_box_diff_px": box_diff,
            "boxes_kept": int(sum(len(s) for _, s in reference.values())),
        }

    def flops(self, loaded: Loaded, inputs: BenchInputs) -> float:
        config, detector = loaded
        size = config.data.image_size
        return model_flops(DenseDetector(detector), torch.zeros(1, 1, size, size, dtype=torch.uint8))

    def details(self, config: PneumoniaConfig, inputs: BenchInputs) -> dict[str, Any]:
        return {"images": inputs.items, "backbone": config.model.backbone, "image_size": config.data.image_size}

    prep = staticmethod(bench_prep)


BENCH = PneumoniaBench()
