"""`radlab mrnet predict`: three `.npy` paths per exam in, one `p_abnormal,p_acl,p_meniscus` row per exam out.

Row i of the output belongs to exam i of the input, whatever the order of planes within an exam. A missing
or unreadable plane costs a warning and the exam is predicted from its other planes (the fusion has a
regression for every subset of planes); an exam with no usable plane gets the training prevalence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radlab.core.console import warn
from radlab.core.engine.ensemble import ensemble_members
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError
from radlab.core.infer.bundle import bundle_main
from radlab.core.io import resolve_under
from radlab.tasks.mrnet.config import MRNetConfig
from radlab.tasks.mrnet.formats import read_exam_paths, write_predictions
from radlab.tasks.mrnet.fusion import apply_fusion
from radlab.tasks.mrnet.inference import unit_logits
from radlab.tasks.mrnet.model import load_run_config, load_units


@dataclass
class PredictionSummary:
    exams: int
    unreadable_series: int
    fallback_exams: list[str] = field(default_factory=list)


def predict_csv(
    input_csv: str | Path,
    output_csv: str | Path,
    run_dir: str | Path,
    data_root: str | Path = ".",
    *,
    batch_size: int | None = None,
    num_workers: int | None = None,
    tta_hflip: bool | None = None,
    strict: bool = False,
    device: str = "auto",
    allow_outside_root: bool = False,
    engine: str = "torch",
    loaded: tuple[MRNetConfig, dict] | None = None,
) -> PredictionSummary:
    """Predict every exam of `input_csv` with the run in `run_dir` and write the submission; a `--folds`
    ensemble averages its members' fused probabilities. `engine` is "torch", or "onnx" / "int8" for the
    files `radlab export` wrote (ONNX Runtime, CPU). `loaded` (load_units of a single run) skips loading,
    for callers predicting many files with one model."""
    members = ensemble_members(run_dir)
    config = loaded[0] if loaded is not None else load_run_config(members[0])
    fusion = RunDir(members[0]).read_json("fusion.json")
    exams = read_exam_paths(input_csv)
    planes = config.train.planes
    if strict:
        for exam in exams:
            missing = [p for p in planes if p not in exam.planes]
            if missing:
                line = min(line for line, _ in exam.planes.values())
                raise RadlabDataError(input_csv, f"exam {exam.key} lists no {', '.join(missing)} (--strict)", line)

    def located(exam, plane: str) -> Path | None:
        if plane not in exam.planes:
            return None
        line, path = exam.planes[plane]
        return resolve_under(data_root, path, allow_outside=allow_outside_root, source=input_csv, line=line)

    paths = {plane: [located(exam, plane) for exam in exams] for plane in planes}
    unreadable = 0

    def on_error(plane: str, index: int, error: str) -> None:
        nonlocal unreadable
        if plane not in exams[index].planes:
            return
        unreadable += 1
        line = exams[index].planes[plane][0]
        if strict:
            raise RadlabDataError(input_csv, f"{error} (--strict)", line)
        warn(f"{input_csv}:{line}: {error}; the exam is predicted from its other planes")

    member_probs = []
    for k, member in enumerate(members):
        member_config, models = loaded if loaded is not None and len(members) == 1 else load_units(member, engine)
        if member_config.train.planes != planes or member_config.data.image_size != config.data.image_size:
            raise RadlabDataError(member / "config.yaml", f"planes or image size differ from {members[0]}")
        logits = unit_logits(
            models,
            paths,
            config.data.image_size,
            batch_size=batch_size or config.predict.batch_size,
            num_workers=config.predict.num_workers if num_workers is None else num_workers,
            device=device,
            tta_hflip=config.predict.tta_hflip if tta_hflip is None else tta_hflip,
            on_error=on_error if k == 0 else lambda *_: None,  # each bad file reported once
        )
        probs, usable = apply_fusion(RunDir(member).read_json("fusion.json"), logits, len(exams))
        member_probs.append(probs)
    probs = np.mean(member_probs, axis=0)
    write_predictions(output_csv, probs)
    fallback = [exam.key for exam, ok in zip(exams, usable, strict=True) if not ok]
    for key in fallback:
        warn(f"no usable plane for exam {key}: given the training prevalence of each label")
    for task in ("abnormal", "acl", "meniscus"):
        if task not in fusion["tasks"]:
            warn(f"this run has no model for {task}; its column holds the training prevalence")
    return PredictionSummary(len(exams), unreadable, fallback)


def describe(summary: PredictionSummary) -> str:
    text = f"{summary.exams} exams"
    if summary.unreadable_series:
        text += f"; {summary.unreadable_series} unreadable series"
    if summary.fallback_exams:
        text += f"; {len(summary.fallback_exams)} exams given the prevalence"
    return text


def codalab_main(argv: list[str], model_dir: Path) -> int:
    """`python src/predict.py PATHS_CSV PREDICTIONS_CSV` inside a CodaLab bundle (paths relative to cwd)."""
    return bundle_main(
        argv,
        "PATHS_CSV PREDICTIONS_CSV",
        # CodaLab hands the paths of its own data: wherever they point, they are the input.
        lambda src, out: describe(predict_csv(src, out, model_dir, data_root=Path.cwd(), allow_outside_root=True)),
    )
