"""What a task gives `radlab serve`: which uploads make one request and how a batch of requests is predicted.

A task's `predict` runs the task's own batch predict (the code path of `radlab TASK predict`, so the service
and the command give the same numbers) over many requests at once and returns the contract's `prediction`
object for each (shared/spec/serve.md). The core does everything else: uploads, limits, batching, errors,
pictures and DICOM results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radlab.core.errors import RadlabError


class RequestShapeError(RadlabError):
    """A request whose files do not make one case of the task (too few, too many, a plane missing): 422."""


@dataclass(frozen=True)
class StagedFile:
    """One uploaded file: the name its client gave (made safe: no folders, no odd characters) and where it
    was written."""

    name: str
    path: Path


@dataclass(frozen=True)
class ServeRequest:
    """One request's files, written under `folder`; `key` is unique among live requests and safe as a file
    name (a task may use it to name the request's entries in a shared batch input)."""

    key: str
    folder: Path
    files: tuple[StagedFile, ...]


@dataclass(frozen=True)
class ServedRun:
    """A loaded model: the run directories it averages (a `--folds` ensemble is its folds), what the Task's
    `load` returned for each, the engine and the device predictions run on."""

    name: str
    members: tuple[Path, ...]
    loaded: tuple[Any, ...]
    engine: str
    device: str


@dataclass(frozen=True)
class FileRule:
    """How many files one request holds and which suffixes they may have (None: any; DICOM files often have
    none), with a phrase naming them for error messages ("the images of one study"); `ensure_suffix` is
    added to a name that lacks it (a task's reader that lists `*.dcm`)."""

    what: str
    min_files: int = 1
    max_files: int | None = None
    suffixes: tuple[str, ...] | None = None
    ensure_suffix: str | None = None

    def accepts(self, name: str) -> bool:
        return self.suffixes is None or name.lower().endswith(self.suffixes)


PredictBatch = Callable[[ServedRun, Sequence[ServeRequest], Path], list[dict[str, Any]]]
CheckRequest = Callable[[Sequence[StagedFile]], None]


@dataclass(frozen=True)
class ServeSpec:
    """A task's part of the service.

    `predict(run, requests, scratch)` predicts every request in one pass of the task's batch predict, with
    unreadable inputs as errors (a `RadlabDataError` naming the file; the core then retries the requests one
    by one, so that one bad upload fails only its own request) and returns one `prediction` per request.
    `check(files)` refuses a request whose files do not make one case (raising RequestShapeError) before it
    is queued. `dicom(sources, prediction, pictures)` builds the DICOM results (a Structured Report, and a
    Secondary Capture per picture) of an answered request, for tasks whose inputs are DICOM."""

    files: FileRule
    predict: PredictBatch
    check: CheckRequest | None = None
    dicom: Callable[..., list[Any]] | None = None


def uncached(config: Any) -> Any:
    """A run's config with its preprocessing cache off: an upload lives for one request, so caching it would
    only grow the cache."""
    data = getattr(config, "data", None)
    if data is None or getattr(data, "cache_dir", None) is None:
        return config
    return config.model_copy(update={"data": data.model_copy(update={"cache_dir": None})})


def link(source: Path, target: Path) -> Path:
    """`target` as a hard link of `source` (a copy where links are impossible): a batch's input layout
    without copying the uploads. Errors about the link still name the upload (same inode)."""
    import os
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target
