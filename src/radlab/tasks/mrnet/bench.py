"""`radlab bench infer --task mrnet`: radlab's predict against the MRNet baseline's way, on the same exams.

Reference (the baseline's evaluation loop): one exam at a time and one network at a time, each network
reading its series from disk again, eager fp32 in contiguous memory under `torch.no_grad`. radlab: exactly
what `radlab mrnet predict` runs (each series read once per plane and shared by that plane's networks,
exams batched and packed, a prefetching loader, channels_last, `torch.inference_mode`). Same weights, same
fusion, so the fused probabilities must agree.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radlab.core.bench import compare_interleaved, comparison_fields, infer_report, model_flops, scratch_copy
from radlab.core.config import config_to_yaml
from radlab.core.console import info
from radlab.core.engine.run_dir import RunDir
from radlab.core.io.atomic import atomic_write_text
from radlab.core.io.volumes import read_volume
from radlab.core.models import save_weights
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet.config import MRNetConfig, load_mrnet_config
from radlab.tasks.mrnet.export import export
from radlab.tasks.mrnet.formats import PLANES, TASKS, read_split_labels, volume_path
from radlab.tasks.mrnet.fusion import apply_fusion, fit_fusion
from radlab.tasks.mrnet.model import build_unit_model, load_units, unit_run, units_for
from radlab.tasks.mrnet.predict import predict_csv
from radlab.tasks.mrnet.synth import synthesize_mrnet


def _inputs(folder: Path, exams: int, seed: int) -> tuple[Path, Path, dict[str, list[Path]]]:
    """Synthetic valid-split exams: (data root, three-paths-per-exam CSV, {plane: paths})."""
    synthesize_mrnet(folder, exams=max(8, 2 * exams), seed=seed, valid_fraction=0.5, workers=2)
    ids = read_split_labels(folder, "valid")[0][:exams]
    paths = {plane: [volume_path(folder, "valid", plane, i) for i in ids] for plane in PLANES}
    csv = folder / "bench_paths.csv"
    atomic_write_text(csv, "".join(f"{paths[plane][k]}\n" for k in range(len(ids)) for plane in PLANES))
    return folder, csv, paths


def _temporary_run(folder: Path, config: MRNetConfig, seed: int) -> Path:
    """A run for predict: seeded fresh networks with a fusion fitted on random logits."""
    run = RunDir(folder / "run")
    run.root.mkdir(parents=True)
    atomic_write_text(run.config, config_to_yaml(config))
    torch.manual_seed(seed)
    units = units_for(config)
    for unit in units:
        sub = unit_run(run, unit)
        sub.root.mkdir(parents=True)
        save_weights(sub.weights, build_unit_model(config, unit, initialise=False).state_dict(), {"task": "mrnet"})
    rng = np.random.default_rng(seed)
    logits = {(task, unit.plane): rng.normal(size=40) for unit in units for task in unit.tasks}
    labels = np.tile([[0, 0, 0], [1, 1, 1]], (20, 1))
    run.write_json("fusion.json", fit_fusion(logits, labels, config.train.tasks, config.train.planes, "train"))
    return run.root


def _reference(models: dict, fusion: dict, paths: dict[str, list[Path]], size: int) -> np.ndarray:
    """The baseline's loop: per exam, per network, read the series, one eager fp32 pass over its slices."""
    transform = VolumeTransform(size)
    n = len(next(iter(paths.values())))
    logits = {(task, unit.plane): np.empty(n) for unit in models for task in unit.tasks}
    with torch.no_grad():
        for k in range(n):
            for unit, model in models.items():
                model = model.eval().to(memory_format=torch.contiguous_format)
                slices = transform(read_volume(paths[unit.plane][k])).float().contiguous()
                out = model(slices, torch.tensor([len(slices)])).float()[0]
                for t, task in enumerate(unit.tasks):
                    logits[(task, unit.plane)][k] = out[t].item()
    return apply_fusion(fusion, logits, n)[0]


def _radlab(run: Path, csv: Path, scratch: Path, loaded: Any, workers: int) -> np.ndarray:
    """`predict_csv` itself, with its networks loaded once beforehand (as the reference's are)."""
    out = scratch / "radlab.csv"
    predict_csv(csv, out, run, num_workers=workers, device="cpu", loaded=loaded, allow_outside_root=True)
    return np.loadtxt(out, delimiter=",", ndmin=2)


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
    """Exams per second and agreement of each radlab engine's predict against the reference (`images` =
    exams). The ONNX engines are exported into a scratch copy of the run, int8 calibrated on synthetic
    training slices."""
    config = load_units(model_dir)[0] if model_dir else load_mrnet_config(config_name, list(overrides))
    size = config.data.image_size
    workers = config.predict.num_workers if workers is None else workers
    columns = [TASKS.index(task) for task in config.train.tasks]
    with tempfile.TemporaryDirectory(prefix="radlab-bench-") as scratch_name:
        scratch = Path(scratch_name)
        root, csv, paths = _inputs(scratch / "data", images, seed)
        run = scratch_copy(model_dir, scratch) if model_dir else _temporary_run(scratch, config, seed)
        if {"onnx", "int8"} & set(engines):
            export(run, int8="int8" in engines, calibration=32, data_root=root, validate=False)
        _, models = load_units(run)
        fusion = RunDir(run).read_json("fusion.json")
        results: dict[str, Any] = {}
        for engine in engines:
            info(f"bench infer mrnet: reference against radlab {engine}, {images} exams, {len(models)} networks")
            loaded = load_units(run, engine)
            comparison = compare_interleaved(
                lambda: _reference(models, fusion, paths, size),
                lambda loaded=loaded: _radlab(run, csv, scratch, loaded, workers),
                items=images,
                repeats=repeats,
            )
            ref, rad = comparison.reference_output[:, columns], comparison.radlab_output[:, columns]
            results[engine] = comparison_fields(
                comparison,
                max_abs_prob_diff=float(np.abs(ref - rad).max()),
                label_agreement=float(np.mean((ref > 0.5) == (rad > 0.5))),
            )
        transform = VolumeTransform(size)
        flops = sum(  # the first exam's series through every network: FLOPs per exam
            model_flops(_OneExam(model), transform(read_volume(paths[unit.plane][0])).float())
            for unit, model in models.items()
        )
    return infer_report(
        "mrnet",
        results,
        "exam",
        flops,
        items="exams (3 series each)",
        exams=images,
        networks=len(models),
        repeats=repeats,
        backbone=config.model.backbone,
        image_size=size,
        loader_workers=workers,
    )


class _OneExam(torch.nn.Module):
    """A unit network over the slices of one exam, for the FLOP counter (one tensor in)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        return self.model(slices, torch.tensor([len(slices)]))
