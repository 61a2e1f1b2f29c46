"""The toy challenge, built only from radlab's core parts: data, recipe, prediction, evaluation, export,
bench, report, explain and demo. Layout: DATA/{train,valid}/*.png and DATA/labels.csv (`image,label`, the
image's path relative to DATA)."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from radlab.core.bench import model_flops
from radlab.core.bench.spec import BenchInputs, BenchSpec, TrainPlan
from radlab.core.console import warn
from radlab.core.demo import DemoSpec, Evaluation
from radlab.core.engine.driver import FitContext, Training, fit_recipe
from radlab.core.engine.ensemble import expand_members
from radlab.core.engine.folds import stratified_folds
from radlab.core.engine.loaders import epoch_loader
from radlab.core.engine.recipe import Recipe
from radlab.core.engine.run_dir import RunDir
from radlab.core.errors import RadlabDataError, nothing_read
from radlab.core.explain import Explanation, class_activation_maps, explain_each, overlay_heatmap
from radlab.core.explain.overlay import map_to_original
from radlab.core.infer import engine_model, pick_device, stream_predictions
from radlab.core.infer.export import ExportPart, ExportSpec, HeldOut, readable_batches
from radlab.core.infer.shard import keyed_lines, merge_shards, of_shard
from radlab.core.io.atomic import atomic_path, atomic_write_text
from radlab.core.io.csvfiles import iter_csv_rows
from radlab.core.io.dataset import ImageFileDataset
from radlab.core.io.images import read_image
from radlab.core.io.inputs import input_files
from radlab.core.metrics import roc_auc
from radlab.core.models import ImageClassifier, build_image_classifier, load_trained, save_weights
from radlab.core.models.ensemble import ProbabilityAverage
from radlab.core.report import (
    CASES_FILE,
    CaseTable,
    Section,
    case_gallery,
    classifier_sections,
    missing_cases,
    table_html,
    write_case_table,
)
from radlab.core.serve.spec import FileRule, ServedRun, ServeRequest, ServeSpec, link
from radlab.core.task import EngineOptions, engine_options
from radlab.core.transforms import build_image_transform
from radlab_toy import TASK, ToyConfig

LABELS = "labels.csv"
Loaded = tuple[ToyConfig, torch.nn.Module]


def synthesize(out: str | Path, images: int = 48, seed: int = 0) -> dict[str, int]:
    """`images` PNGs of 24-40 px sides, every other one with a bright disc; a quarter in valid/."""
    out, rng = Path(out), np.random.default_rng(seed)
    rows = []
    for k in range(images):
        height, width = (int(v) for v in rng.integers(24, 41, size=2))
        pixels = Image.fromarray(rng.normal(90, 25, (height, width)).clip(0, 255).astype(np.uint8))
        label = k % 2
        if label:
            r = min(height, width) / 5
            x, y = rng.uniform(r, width - r), rng.uniform(r, height - r)
            ImageDraw.Draw(pixels).ellipse((x - r, y - r, x + r, y + r), fill=235)
        name = f"{'valid' if k % 8 >= 6 else 'train'}/img_{k:04d}.png"
        with atomic_path(out / name, durable=False) as tmp:
            pixels.save(tmp, format="PNG")
        rows.append(f"{name},{label}\n")
    atomic_write_text(out / LABELS, "image,label\n" + "".join(rows))
    return {"train": sum("train/" in r for r in rows), "valid": sum("valid/" in r for r in rows)}


def read_labels(path: Path) -> dict[str, int]:
    """{image path relative to the data folder: label}; a wrong header or label names the file and line."""
    table: dict[str, int] = {}
    for line, cells in iter_csv_rows(path):
        if line == 1:
            if cells[:2] != ["image", "label"]:
                raise RadlabDataError(path, f"expected the header image,label, got {','.join(cells)}", line)
            continue
        if len(cells) != 2 or cells[1] not in ("0", "1"):
            raise RadlabDataError(path, "expected image,label with label 0 or 1", line)
        table[cells[0]] = int(cells[1])
    return table


def data_root(folder: Path) -> Path:
    if not (folder / LABELS).is_file():
        raise RadlabDataError(folder / LABELS, "missing: pass the folder that holds the toy challenge's files")
    return folder


class ToyDataset(ImageFileDataset):
    """Labelled images: ImageFileDataset items plus "label"."""

    def __init__(self, root: Path, names: Sequence[str], labels: Sequence[int], transform: Any) -> None:
        super().__init__([root / name for name in names], transform, transform.output_shape)
        self.labels = np.asarray(labels, dtype=np.float32)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]  # adds "label"
        return {**super().__getitem__(index), "label": self.labels[index]}


def build_model(config: ToyConfig, initialise: bool = True) -> ImageClassifier:
    model = config.model
    return build_image_classifier(
        model.backbone,
        1,
        (0.35, 0.35, 0.35),
        (0.15, 0.15, 0.15),
        **model.weights(initialise),
    )


class ToyRecipe(Recipe[ToyConfig]):
    monitor, mode = "val/auroc", "max"

    def __init__(self, config: ToyConfig, names: list[str], inputs: list[str]) -> None:
        super().__init__(config)
        self.model = build_model(config)
        self.names, self.inputs = names, inputs
        self.latest: dict[str, Any] = {}

    def _step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        keep = self.readable_mask(batch["error"])
        logits = self.model(batch["image"]).float()[:, 0]
        loss = (F.binary_cross_entropy_with_logits(logits, batch["label"], reduction="none") * keep).sum()
        return loss / keep.sum().clamp(min=1.0), logits, keep

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch)[0]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, logits, keep = self._step(batch)
        self.log("val/loss", loss, on_epoch=True, batch_size=len(keep), sync_dist=True)
        self.validation.add(batch["index"], probs=torch.sigmoid(logits), labels=batch["label"], keep=keep)

    def on_validation_epoch_end(self) -> None:
        found = self.validation.gather(self)
        keep = found["keep"] > 0
        auroc = roc_auc(found["labels"][keep], found["probs"][keep])
        self.log("val/auroc", auroc, sync_dist=True)
        self.latest = {"auroc": None if np.isnan(auroc) else float(auroc), "index": found.index[keep], **found.columns}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.config.optim.lr)

    def export(self, run: RunDir, epoch: int) -> None:
        save_weights(run.weights, self.model.state_dict(), {"task": "toy", "epoch": str(epoch)})
        run.write_json("metrics.json", {"epoch": epoch, "auroc": self.latest.get("auroc")})
        if "index" in self.latest:
            index, keep = self.latest["index"], self.latest["keep"] > 0
            write_case_table(
                run.file(CASES_FILE),
                [self.names[i] for i in index],
                ["disc"],
                self.latest["labels"][keep].astype(int),
                self.latest["probs"][keep],
                inputs=[self.inputs[i] for i in index],
            )


def fit(context: FitContext[ToyConfig]) -> dict[str, Any]:
    config, root = context.config, context.data_root
    labels = read_labels(root / LABELS)
    train_names = [n for n in labels if n.startswith("train/")]
    valid_names = [n for n in labels if n.startswith("valid/")]
    if config.train.folds is not None:  # validate on a held-out fold of the train images
        kept, held_out = stratified_folds(
            np.array([labels[n] for n in train_names]), config.train.folds, config.train.seed
        )[config.train.fold]
        train_names, valid_names = [train_names[i] for i in kept], [train_names[i] for i in held_out]
    size = config.data.image_size
    augment = build_image_transform(size, train=True, hflip=0.5, seed=config.train.seed)
    train_set = ToyDataset(root, train_names, [labels[n] for n in train_names], augment)
    valid_set = ToyDataset(root, valid_names, [labels[n] for n in valid_names], build_image_transform(size))
    loading = {"batch_size": config.train.batch_size, "num_workers": config.data.num_workers}
    recipe = ToyRecipe(config, valid_names, valid_set.paths)
    fit_recipe(
        recipe,
        context.run,
        config.train,
        epoch_loader(train_set, shuffle=True, **loading),
        epoch_loader(valid_set, shuffle=False, **loading),
        context.checkpoint,
    )
    return context.run.read_json("metrics.json")


TRAINING = Training(
    data_root=data_root,
    fit=fit,
    held_out=lambda metrics: {"auroc": metrics.get("auroc")},
    describe=lambda metrics, out: f"kept epoch {metrics['epoch']}: validation AUROC {metrics['auroc']}; run in {out}",
)


def load_run(run_dir: str | Path, engine: str = "torch") -> Loaded:
    run = RunDir(Path(run_dir))
    run.require_model()
    config: ToyConfig = TASK.run_config(run.root)
    model = build_model(config, initialise=False)
    return config, engine_model(load_trained(model, run.weights, config.model.backbone), run.root, engine)


def predict_folder(
    input_dir: Path,
    output_csv: Path,
    run_dirs: str | Path | Sequence[str | Path],
    *,
    loaded: Loaded | None = None,
    **options: Unpack[EngineOptions],
) -> int:
    """Write `image,probability` for every readable PNG of `input_dir`; several runs are averaged."""
    batch_size, num_workers, strict, device, engine = engine_options(options)
    if loaded is None:
        members = expand_members([run_dirs] if isinstance(run_dirs, str | Path) else run_dirs)
        runs = [load_run(member, engine) for member in members]
        models = [model for _, model in runs]
        loaded = runs[0][0], models[0] if len(models) == 1 else ProbabilityAverage(models)
    config, model = loaded
    paths = of_shard(input_files(input_dir, (".png",), "PNG image"), options.get("shard"), lambda path: path.name)
    transform = build_image_transform(config.data.image_size)
    rows: list[tuple[str, float]] = []
    for batch in stream_predictions(
        model,
        ImageFileDataset(paths, transform, transform.output_shape),
        batch_size=batch_size or config.predict.batch_size,
        num_workers=config.predict.num_workers if num_workers is None else num_workers,
        device=pick_device(device),
    ):
        for index, probability, error in zip(batch.indices, batch.probs[:, 0], batch.errors, strict=True):
            if error and strict:
                raise RadlabDataError(paths[int(index)], f"{error} (--strict)")
            if error:
                warn(f"{error}; left out")
                continue
            rows.append((paths[int(index)].name, float(probability)))
    if paths and not rows:
        raise nothing_read(input_dir, len(paths), "PNG images")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([("image", "probability"), *rows])
    atomic_write_text(output_csv, buffer.getvalue())
    return len(rows)


def read_predictions(path: Path) -> dict[str, float]:
    return {cells[0]: float(cells[1]) for line, cells in iter_csv_rows(path) if line > 1}


def evaluate_files(truth_csv: Path, predictions_csv: Path) -> dict[str, Any]:
    truth = {Path(name).name: label for name, label in read_labels(Path(truth_csv)).items()}
    predicted = read_predictions(Path(predictions_csv))
    unknown = sorted(set(predicted) - set(truth))
    if unknown:
        raise RadlabDataError(predictions_csv, f"image {unknown[0]} is not in {Path(truth_csv).name}")
    y = np.array([truth[n] for n in predicted])
    p = np.array(list(predicted.values()))
    auroc = roc_auc(y, p)
    return {
        "auroc": None if np.isnan(auroc) else float(auroc),
        "accuracy": float(np.mean((p > 0.5) == y)),
        "images": len(y),
    }


def bundled(input_dir: str, output_csv: str, model_dir: Path) -> str:
    return f"{predict_folder(Path(input_dir), Path(output_csv), model_dir)} images"


def _export_parts(run: RunDir, loaded: Loaded, root: Path | None, held_out_apart: bool) -> list[ExportPart]:
    config, model = loaded
    size = config.data.image_size

    def calibrate(count: int) -> Any:
        assert root is not None
        paths = sorted((root / "train").glob("*.png"))[:count]
        transform = build_image_transform(size)
        return readable_batches(ImageFileDataset(paths, transform, transform.output_shape))

    return [ExportPart(run.root, model, torch.rand(2, 1, size, size) * 255, calibrate)]


def _held_out(run: RunDir, root: Path, scratch: Path) -> HeldOut:
    calls = itertools.count()

    def predict(
        engine: str, models: Sequence[Path] | None = None, device: str = "cpu"
    ) -> tuple[float | None, np.ndarray]:
        out = scratch / f"{engine}-{next(calls)}.csv"
        predict_folder(root / "valid", out, list(models or [run.root]), engine=engine, num_workers=0, device=device)
        return evaluate_files(root / LABELS, out)["auroc"], np.array(list(read_predictions(out).values()))

    return HeldOut(predict)


EXPORT = ExportSpec(parts=_export_parts, held_out=_held_out, metric="auroc")


class ToyBench(BenchSpec):
    unit, default_items, calibration = "image", 4, 8
    train = TrainPlan(synth=lambda items: {"images": max(16, 2 * items)}, epoch_items=1000, item="image")

    def inputs(self, folder: Path, items: int, seed: int) -> BenchInputs:
        synthesize(folder, images=max(8, 4 * items), seed=seed)
        return BenchInputs(folder, len(list((folder / "valid").glob("*.png"))), folder / "valid")

    def fresh_run(self, run: RunDir, config: ToyConfig, seed: int) -> None:
        save_weights(run.weights, build_model(config, initialise=False).state_dict())

    def reference(self, loaded: Loaded, inputs: BenchInputs) -> np.ndarray:
        """One image at a time, eager fp32."""
        config, model = loaded
        transform = build_image_transform(config.data.image_size)
        model = model.to(inputs.device)
        with torch.no_grad():
            paths = sorted(inputs.payload.glob("*.png"))
            images = [transform(read_image(path))[None].float().to(inputs.device) for path in paths]
            return np.array([float(torch.sigmoid(model(image))[0, 0]) for image in images])

    def radlab(self, loaded: Loaded, inputs: BenchInputs, scratch: Path, workers: int) -> np.ndarray:
        out = scratch / "radlab.csv"
        predict_folder(inputs.payload, out, [], num_workers=workers, device=inputs.device, loaded=loaded)
        return np.array(list(read_predictions(out).values()))

    def agreement(self, reference: np.ndarray, radlab: np.ndarray, config: ToyConfig) -> dict[str, Any]:
        return {
            "max_abs_prob_diff": float(np.abs(reference - radlab).max()),
            "label_agreement": float(np.mean((reference > 0.5) == (radlab > 0.5))),
        }

    def flops(self, loaded: Loaded, inputs: BenchInputs) -> float:
        return model_flops(loaded[1], torch.rand(1, 1, 32, 32) * 255)

    def details(self, config: ToyConfig, inputs: BenchInputs) -> dict[str, Any]:
        return {"images": inputs.items, "backbone": config.model.backbone}


BENCH = ToyBench()


def explain_image(loaded: Loaded, path: Path) -> Explanation:
    config, model = loaded
    original = read_image(path)
    result = class_activation_maps(model, build_image_transform(config.data.image_size)(original)[None], classes=[0])
    height, width = original.shape[:2]
    cam = map_to_original(result.maps[0, 0], height, width, config.data.image_size)
    probability = float(torch.sigmoid(torch.tensor(result.logits[0, 0])))
    return Explanation(path.stem, overlay_heatmap(original, cam), f"p(disc) {probability:.3f}", {"input": str(path)})


def explain(input_path: Path, run_dir: Path) -> list[Explanation]:
    loaded = load_run(run_dir)
    return explain_each(input_files(input_path, (".png",), "PNG image"), lambda p: [explain_image(loaded, p)])


def sections(run: RunDir, metrics: dict[str, Any], cases: CaseTable | None) -> list[Section]:
    found = [
        Section("Validation AUROC", table_html(["epoch", "AUROC"], [[metrics.get("epoch"), metrics.get("auroc")]]))
    ]
    if cases is None:
        return [*found, missing_cases(run)]
    loaded = load_run(run.root)
    gallery = case_gallery(cases, "disc", 0.5, lambda row: explain_image(loaded, Path(cases.inputs[row])))
    return [*found, *classifier_sections(cases), gallery]


def serve_predict(run: ServedRun, requests: Sequence[ServeRequest], scratch: Path) -> list[dict[str, Any]]:
    """`radlab serve` for the toy: one PNG per request, a batch is one folder through predict_folder."""
    images = scratch / "images"
    for request in requests:
        link(request.files[0].path, images / f"{request.key}.png")
    models = [model for _, model in run.loaded]
    loaded = run.loaded[0][0], models[0] if len(models) == 1 else ProbabilityAverage(models)
    predict_folder(images, scratch / "p.csv", list(run.members), loaded=loaded, strict=True, num_workers=0)
    found = read_predictions(scratch / "p.csv")
    return [{"probability": found[f"{request.key}.png"]} for request in requests]


SERVE = ServeSpec(files=FileRule("one PNG image", 1, 1, (".png",)), predict=serve_predict)


class ToyDemo(DemoSpec):
    what = "48 images"

    def synth(self, data: Path, seed: int, images: int = 48, **sizes: Any) -> str:
        return f"{synthesize(data, images=images, seed=seed)} images per split"

    def predict_args(self, data: Path, run: Path, output: Path) -> list[str]:
        return [str(data / "valid"), str(output)]

    def inputs(self, data: Path) -> list[Path]:
        return sorted((data / "valid").glob("*.png"))

    def evaluate(self, data: Path, output: Path, metrics: dict[str, Any]) -> Evaluation:
        scores = evaluate_files(data / LABELS, output)
        return Evaluation(
            scores, f"toy, valid images: AUROC {scores['auroc']}, accuracy {scores['accuracy']:.3f}", scores
        )

    def scores(self, output: Path) -> np.ndarray:
        return np.array(list(read_predictions(output).values()))

    def explain_input(self, data: Path) -> Path:
        return self.inputs(data)[0]


DEMO = ToyDemo()


def merge(input_dir: Path, output: Path, shards: Sequence[Path]) -> str:
    """`radlab toy merge`: the outputs of `predict --shard` as one (the header once, images by name)."""
    names = [path.name for path in input_files(input_dir, (".png",), "PNG image")]
    count = merge_shards([(n, n) for n in names], shards, output, lambda path, _: keyed_lines(path, 1), "image")
    return f"{count} images from {len(shards)} shard files -> {output}"
