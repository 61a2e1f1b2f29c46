"""`radlab card RUN`: RUN/MODEL_CARD.md from what the run recorded (config.yaml, metrics.json,
environment.json, data_stats.json) and the task's recipe checklist: intended use and misuse, the data, the
recipe and its differences from the original, metrics with intervals, calibration, environment, weights."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from radlab.core.errors import RadlabError
from radlab.core.io.atomic import atomic_write_text
from radlab.core.summary.facts import RunFacts, format_value, numbers, read_facts, with_intervals
from radlab.core.summary.recipe import checklist, differences

CARD = "MODEL_CARD.md"
CALIBRATION_FILES = ("calibration.json",)
"""Where `radlab calibrate` keeps its fit (shown when present)."""

NOT_FOR = (
    "diagnosis, triage, screening or any other clinical decision: it is not a medical device and was not "
    "validated prospectively, nor on other scanners, sites or populations than its training data's",
    "images unlike its training data (other modalities, body parts, acquisition protocols): its outputs there "
    "are unsupported",
    "a run trained on synthetic data (`radlab synth`, `radlab demo`) checks the software, it knows no anatomy",
)


def write_card(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the card (default RUN/MODEL_CARD.md) and return its path."""
    facts = read_facts(run)
    target = Path(out) if out is not None else facts.path / CARD
    atomic_write_text(target, render_card(facts))
    return target


def render_card(facts: RunFacts) -> str:
    sections = [
        _intended_use(facts),
        _data(facts),
        _recipe(facts),
        _metrics(facts),
        _calibration(facts),
        _environment(facts.environment),
        _weights(facts),
    ]
    title = (
        f"# Model card: {facts.task}, {facts.path.name}\n\nWritten by `radlab card` from {facts.path} ({facts.kind})."
    )
    return "\n\n".join([title, *sections]) + "\n"


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _intended_use(facts: RunFacts) -> str:
    from radlab.core.task import get_task

    try:
        what = get_task(facts.task).help
    except RadlabError:  # a task no longer installed: the card is still written
        what = f"a model of the {facts.task} task"
    lines = [
        "## Intended use",
        "",
        f"{what}",
        "",
        f"For research and teaching on the {facts.task} challenge's data: reproducing the published recipe, "
        "comparing methods, benchmarking.",
        "",
        "Must not be used for:",
        "",
        *(f"- {item}" for item in NOT_FOR),
    ]
    return "\n".join(lines)


def _data(facts: RunFacts) -> str:
    lines = ["## Data", ""]
    manifest = (facts.environment or {}).get("data")
    if not manifest:
        lines.append("No data manifest: the run was trained before radlab recorded one (environment.json).")
    else:
        lines += [f"Training data folder `{manifest['root']}`: {manifest['total_files']} files.", ""]
        lines += [_table(("suffix", "files"), ((s or "(none)", n) for s, n in manifest["files"].items())), ""]
        labels = manifest.get("label_files", {})
        lines.append(
            _table(("label file", "bytes", "sha256"), ((k, v["bytes"], v["sha256"]) for k, v in labels.items()))
        )
    stats = facts.path / "data_stats.json"
    if stats.is_file():
        counts = numbers(json.loads(stats.read_text(encoding="utf-8")))
        lines += ["", "Counts and splits (data_stats.json):", "", _table(("key", "value"), counts.items())]
    return "\n".join(lines)


def _recipe(facts: RunFacts) -> str:
    lines = ["## Recipe", ""]
    keys = ("model.backbone", "model.pretrained", "data.image_size", "train.max_epochs", "train.batch_size")
    lines += [_table(("key", "value"), ((k, facts.config[k]) for k in keys if k in facts.config)), ""]
    path = checklist(facts.task)
    if path is None:
        lines.append("No recipe checklist for this task (docs/recipes/ in radlab's source).")
    else:
        rows = differences(path)
        lines += [
            f"Where the recipe is not the original's ({path.name}; the full checklist says what is the same):",
            "",
        ]
        lines.append(_table(("item", "original", "radlab", "verdict"), rows) if rows else "Nowhere.")
    lines += ["", "<details><summary>The whole config</summary>", ""]
    lines += [_table(("key", "value"), facts.config.items()), "", "</details>"]
    return "\n".join(lines)


def _metrics(facts: RunFacts) -> str:
    rows = [(key, format_value(*value)) for key, value in with_intervals(facts.metrics).items()]
    body = _table(("metric (validation)", "value [interval]"), rows) if rows else "No metrics recorded."
    return "## Metrics\n\n" + body


def _calibration(facts: RunFacts) -> str:
    for name in CALIBRATION_FILES:
        path = facts.path / name
        if path.is_file():
            values = numbers(json.loads(path.read_text(encoding="utf-8")))
            return f"## Calibration\n\nFrom {name}:\n\n" + _table(("key", "value"), values.items())
    return "## Calibration\n\nNot calibrated: its probabilities are the network's own (`radlab calibrate RUN`)."


def _environment(record: dict[str, Any] | None) -> str:
    if record is None:
        return "## Environment\n\nNot recorded (trained before radlab wrote environment.json)."
    radlab, torch, cpu = record.get("radlab", {}), record.get("torch", {}), record.get("cpu", {})
    devices = ", ".join(d.get("name", d.get("type", "?")) for d in record.get("devices", [])) or "CPU only"
    rows = [
        ("radlab", f"{radlab.get('version')} ({radlab.get('revision') or 'no revision'}"
         f"{', with local changes' if radlab.get('dirty') else ''})"),
        ("Python", record.get("python", {}).get("version")),
        ("PyTorch", f"{torch.get('version')} (CUDA {torch.get('cuda')}, cuDNN {torch.get('cudnn')})"),
        ("devices", devices),
        ("CPU", f"{cpu.get('model')} ({torch.get('cpu_capability')}, {torch.get('threads')} threads)"),
        ("seeds", ", ".join(f"{k}={v}" for k, v in record.get("seeds", {}).items())),
        ("deterministic", record.get("deterministic")),
        ("trained", f"{record.get('started')} to {record.get('finished')} ({record.get('status')})"),
        ("command", " ".join(record.get("command", []))),
    ]  # fmt: skip
    if record.get("tracking"):
        rows.append(("tracked", ", ".join(f"{k} {v}" for k, v in record["tracking"].items())))
    return "## Environment\n\n" + _table(("what", "value"), rows)


def _weights(facts: RunFacts) -> str:
    start = facts.config.get("model.weights_file") or (
        f"{facts.config.get('model.backbone')}'s pretrained weights" if facts.config.get("model.pretrained") else "none"
    )
    lines = [
        "## Weights",
        "",
        f"Started from: {start}. The trained weights carry the licence of those starting weights (see their source's "
        "model card) and of the training data's terms of use.",
        "",
    ]
    recorded = (facts.environment or {}).get("weights") or {}
    lines.append(_table(("file", "sha256"), recorded.items()) if recorded else "No checksums recorded.")
    return "\n".join(lines)
