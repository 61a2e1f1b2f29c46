"""RUN/environment.json: written when a training starts (what runs it, on what, on which data) and completed
when it ends (the sha256 of every weights file the run holds), then checked whenever those weights load.

A run's weights files are its `*.safetensors` outside `checkpoints/` folders (resumable state, not a model),
nested ones included (ICH's slice/ and sequence/, MRNet's units/, kept epochs), but not those of a nested
folder with an environment.json of its own. Every training of the run (a first one, `--resume`, `--stage`)
rewrites the record from its start, earlier trainings kept under "earlier", and lists the weights anew at
its end, so the checksums are always those of the last training that finished; while one trains (or after
one was killed) the record lists no weights and nothing is checked.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from radlab.core.config import flat_keys
from radlab.core.console import warn
from radlab.core.engine.run_dir import RunDir, refuse_json_constant
from radlab.core.errors import RadlabDataError
from radlab.core.provenance.environment import describe_environment
from radlab.core.provenance.manifest import data_manifest, sha256_file

ENVIRONMENT = "environment.json"
FORMAT = "radlab-environment/1"
TRAINING, FINISHED = "training", "finished"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def seeds(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every config key that is a seed (`train.seed`, a task's own `*.seed`), as flat keys."""
    return {key: value for key, value in flat_keys(config).items() if key.rsplit(".", 1)[-1].endswith("seed")}


def start_record(run: RunDir, config: Mapping[str, Any], data_root: Path, deterministic: bool) -> None:
    """Write RUN/environment.json for a training that starts now (its weights not listed yet)."""
    earlier_record = read_record(run.root)
    earlier = list(earlier_record.get("earlier", [])) if earlier_record else []
    if earlier_record:
        earlier.append({key: earlier_record.get(key) for key in ("started", "finished", "status", "command")})
    record = {
        "format": FORMAT,
        "status": TRAINING,
        "started": _now(),
        "finished": None,
        "seconds": None,
        "command": list(sys.argv),
        "working_directory": os.getcwd(),
        **describe_environment(),
        "seeds": seeds(config),
        "deterministic": deterministic,
        "data": data_manifest(data_root),
        "weights": {},
        "earlier": earlier,
    }
    run.write_json(ENVIRONMENT, record)


def finish_record(run: RunDir, started: float, tracking: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Complete RUN/environment.json: finished now, `started` (time.monotonic()) to now, the sha256 of every
    weights file of the run, and where the training was tracked (`tracking`, when it was)."""
    record = read_record(run.root) or {"format": FORMAT}
    record.update(
        status=FINISHED,
        finished=_now(),
        seconds=round(time.monotonic() - started, 1),
        weights={path.relative_to(run.root).as_posix(): sha256_file(path) for path in weights_files(run.root)},
    )
    if tracking is not None:
        record["tracking"] = dict(tracking)
    run.write_json(ENVIRONMENT, record)
    return record


def weights_files(root: Path) -> list[Path]:
    """The run's weights files (see the module's docstring), sorted."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d
            for d in dirs
            if d != "checkpoints" and not d.startswith(".") and not Path(folder, d, ENVIRONMENT).is_file()
        )
        found += [Path(folder, f) for f in sorted(files) if f.endswith(".safetensors") and not f.startswith(".")]
    return found


def read_record(folder: Path) -> dict[str, Any] | None:
    """FOLDER/environment.json, None when there is none or it is not radlab's; damaged: one line naming it."""
    path = folder / ENVIRONMENT
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse_json_constant)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise RadlabDataError(path, f"not valid JSON ({exc})") from None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


_ALLOW_CHANGED: ContextVar[bool] = ContextVar("radlab_allow_changed_weights", default=False)


@contextmanager
def changed_weights_allowed(allow: bool = True) -> Iterator[None]:
    """Inside this block weights whose checksum no longer matches their record are a warning, not an error
    (`predict --allow-changed-weights`)."""
    token = _ALLOW_CHANGED.set(allow)
    try:
        yield
    finally:
        _ALLOW_CHANGED.reset(token)


def check_weights(path: str | Path) -> None:
    """Refuse (one line naming the file), or inside `changed_weights_allowed` warn about, a weights file whose
    sha256 is not the one the nearest environment.json above it recorded. A file that no finished record
    lists (a run trained before records existed, one still training) is not checked."""
    given, path = Path(path), Path(path).absolute()
    for folder in path.parents:
        if (folder / ENVIRONMENT).is_file():
            break
    else:
        return
    record = read_record(folder)
    if record is None or record.get("status") != FINISHED:
        return
    weights = record.get("weights")
    expected = weights.get(path.relative_to(folder).as_posix()) if isinstance(weights, dict) else None
    if expected is None:
        return
    actual = sha256_file(path)
    if actual == expected:
        return
    recorded = f"{folder / ENVIRONMENT} records {str(expected)[:16]}..."
    reason = f"changed since training: its sha256 is {actual[:16]}..., {recorded}"
    if _ALLOW_CHANGED.get():
        warn(f"{given}: {reason}; used anyway (--allow-changed-weights)")
        return
    raise RadlabDataError(given, f"{reason} (pass --allow-changed-weights to use it anyway)")
