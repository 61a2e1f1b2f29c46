"""`radlab bench infer --task mrnet`: radlab's predict against the MRNet baseline's way, on the same exams.

Reference (the baseline's evaluation loop): one exam at a time and one network at a time, each network
reading its series from disk again, eager fp32 in contiguous memory under `torch.no_grad`. radlab: exactly
what `radlab mrnet predict` runs (each series read once per plane and shared by that plane's networks,
exams batched and packed, a prefetching loader, channels_last, `torch.inference_mode`; ONNX Runtime for the
slice encoders with the onnx / int8 engines). Same weights, same fusion, so the fused probabilities must
agree. MRNet has no `bench prep`: its volumes need no decoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core.bench import model_flops
from radlab.core.bench.spec import BenchInputs, BenchSpec, TrainPlan
from radlab.core.engine.run_dir import RunDir
from radlab.core.models import save_weights
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet import MRNetConfig
from radlab.tasks.mrnet.data import read_series
from radlab.tasks.mrnet.formats import PLANES, TASKS, read_split_labels, volume_path, write_paths_csv
from radlab.tasks.mrnet.model import apply_fusion, build_unit_model, fit_fusion, unit_run, units_for
from radlab.tasks.mrnet.predict import LoadedRun, predict_csv
from radlab.tasks.mrnet.synth import synthesize_mrnet


class _OneExam(torch.nn.Module):
    """A unit network over the slices of one exam, for the FLOP counter (one tensor in)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        return self.model(slices, torch.tensor([len(slices)]))


class MRNetBench(BenchSpec):
    unit = "exam"
    default_items = 8
    calibration = 32
    train = TrainPlan(
        synth=lambda items: {"exams": max(8, 2 * items)},
        epoch_items=1130,
        item="exam (one of the 9 networks; the recipe trains 9)",
        overrides=("train.planes=[sagittal]", "train.tasks=[acl]"),
    )

    def inputs(self, folder: Path, exams: int, seed: int) -> BenchInputs:
        """Synthetic valid-split exams: the data root, and as payload (three-paths-per-exam CSV, {plane: paths})."""
        synthesize_mrnet(folder, exams=max(8, 2 * exams), seed=seed, valid_fraction=0.5, workers=2)
        ids = read_split_labels(folder, "valid")[0][:exams]
        paths = {plane: [volume_path(folder, "valid", plane, i) for i in ids] for plane in PLANES}
        csv = folder / "bench_paths.csv"
        write_paths_csv(folder, "valid", csv, ids=ids)
        return BenchInputs(folder, len(ids), (csv, paths))

    def fresh_run(self, run: RunDir, config: MRNetConfig, seed: int) -> None:
        """Seeded fresh networks with a fusion fitted on random logits."""
        units = units_for(config)
        for unit in units:
            sub = unit_run(run, unit)
            sub.root.mkdir(parents=True)
            save_weights(sub.weights, build_unit_model(config, unit, initialise=False).state_dict(), {"task": "mrnet"})
        rng = np.random.default_rng(seed)
        logits = {(task, unit.plane): rng.normal(size=40) for unit in units for task in unit.tasks}
        labels = np.tile([[0, 0, 0], [1, 1, 1]], (20, 1))
        run.write_json("fusion.json", fit_fusion(logits, labels, config.train.tasks, config.train.planes, "train"))

    def reference(self, loaded: LoadedRun, inputs: BenchInputs) -> np.ndarray:
        """The baseline's loop: per exam, per network, read the series, one eager fp32 pass over its slices."""
        paths = inputs.payload[1]
        transform = VolumeTransform(loaded.config.data.image_size)
        n = inputs.items
        logits = {(task, unit.plane): np.empty(n) for unit in loaded.units for task in unit.tasks}
        with torch.no_grad():
            for k in range(n):
                for unit, model in loaded.units.items():
                    model = model.eval().to(inputs.device).to(memory_format=torch.contiguous_format)
                    slices = transform(read_series(paths[unit.plane][k])).float().to(inputs.device)
                    out = model(slices, torch.tensor([len(slices)])).float()[0]
                    for t, task in enumerate(unit.tasks):
                        logits[(task, unit.plane)][k] = out[t].item()
        return apply_fusion(loaded.fusion, logits, n)[0]

    def radlab(self, loaded: LoadedRun, inputs: BenchInputs, scratch: Path, workers: int) -> np.ndarray:
        """`predict_csv` itself, with its networks loaded once beforehand (as the reference's are)."""
        out = scratch / "radlab.csv"
        predict_csv(
            inputs.payload[0],
            out,
            loaded.root,
            inputs.data_root,
            num_workers=workers,
            device=inputs.device,
            loaded=loaded,
        )
        return np.loadtxt(out, delimiter=",", ndmin=2)

    def agreement(self, reference: np.ndarray, radlab: np.ndarray, config: MRNetConfig) -> dict[str, Any]:
        """On the labels the run has networks for (the others hold the prevalence on both sides)."""
        columns = [TASKS.index(task) for task in config.train.tasks]
        ref, rad = reference[:, columns], radlab[:, columns]
        return {
            "max_abs_prob_diff": float(np.abs(ref - rad).max()),
            "label_agreement": float(np.mean((ref > 0.5) == (rad > 0.5))),
        }

    def flops(self, loaded: LoadedRun, inputs: BenchInputs) -> float:
        """The first exam's series through every network: FLOPs per exam."""
        paths = inputs.payload[1]
        transform = VolumeTransform(loaded.config.data.image_size)
        return sum(
            model_flops(_OneExam(model), transform(read_series(paths[unit.plane][0])).float())
            for unit, model in loaded.units.items()
        )

    def details(self, config: MRNetConfig, inputs: BenchInputs) -> dict[str, Any]:
        return {
            "items": "exams (3 series each)",
            "exams": inputs.items,
            "networks": len(units_for(config)),
            "backbone": config.model.backbone,
            "image_size": config.data.image_size,
        }


BENCH = MRNetBench()
