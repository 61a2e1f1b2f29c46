"""The service without HTTP: the loaded models, one micro-batcher each on one shared prediction thread, and
what answering one staged request takes (prediction, pictures, DICOM results)."""

from __future__ import annotations

import base64
import functools
import io
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radlab.core.errors import RadlabDataError, RadlabError
from radlab.core.serve.batcher import MicroBatcher
from radlab.core.serve.models import ModelPlan, ServedModel, load_model
from radlab.core.serve.spec import ServeRequest
from radlab.core.serve.staging import batch_folder


class UploadError(RadlabError):
    """An upload that cannot be read as the task's input (400), the message naming the client's file."""


class StowError(RadlabError):
    """The `--stow` DICOMweb server refused or could not be reached (502: not the client's fault)."""


@dataclass(frozen=True)
class Limits:
    """How requests are batched and bounded."""

    max_batch: int = 8
    max_wait_s: float = 0.01
    queue: int = 64
    max_upload_bytes: int = 256 * 1024 * 1024
    timeout_s: float = 120.0


@dataclass
class Service:
    """Models (loaded in the background by `load`), their batchers and the thread predictions run on."""

    plans: list[ModelPlan]
    scratch: Path
    engine: str = "torch"
    device: str = "auto"
    limits: Limits = field(default_factory=Limits)
    stow: str | None = None
    models: dict[str, ServedModel] = field(default_factory=dict)
    batchers: dict[str, MicroBatcher[ServeRequest, dict[str, Any]]] = field(default_factory=dict)
    load_error: BaseException | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="radlab-predict")
    )

    def load(self) -> None:
        """Load every planned model (on the prediction thread's behalf; call from a background thread)."""
        try:
            for plan in self.plans:
                self.models[plan.name] = load_model(plan, self.engine, self.device)
        except BaseException as exc:  # reported by the server, which then stops
            self.load_error = exc
            return
        self.ready.set()

    def start_batchers(self) -> None:
        """One batcher per loaded model, on the running event loop."""
        for name in self.models:
            batcher: MicroBatcher[ServeRequest, dict[str, Any]] = MicroBatcher(
                functools.partial(self.predict_batch, name),
                self.executor,
                max_batch=self.limits.max_batch,
                max_wait_s=self.limits.max_wait_s,
                capacity=self.limits.queue,
            )
            batcher.start()
            self.batchers[name] = batcher

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()
        self.executor.shutdown(wait=True)

    def predict_batch(self, name: str, requests: Sequence[ServeRequest]) -> list[dict[str, Any] | BaseException]:
        """The requests' predictions in one pass; when an upload in it is unreadable, each request alone, so
        that only the bad one fails (with its own message)."""
        model = self.models[name]
        if len(requests) > 1:
            try:
                with batch_folder(self.scratch) as folder:
                    return list(model.spec.predict(model.run, requests, folder))
            except RadlabDataError:
                pass
        results: list[dict[str, Any] | BaseException] = []
        for request in requests:
            try:
                with batch_folder(self.scratch) as folder:
                    try:
                        results.append(model.spec.predict(model.run, [request], folder)[0])
                    except RadlabDataError as exc:  # named while the batch's files still exist
                        results.append(UploadError(user_message(exc, request, self.scratch)))
            except Exception as exc:
                results.append(exc)
        return results

    def explanations(self, name: str, request: ServeRequest) -> list[Any]:
        """`radlab explain`'s pictures of a request's files (run on the prediction thread)."""
        model = self.models[name]
        explain = model.plan.task.explain
        if explain is None:
            raise RadlabError(f"the {model.plan.task.name} task has no pictures (explain)")
        try:
            return list(explain.get()(request.folder, model.run.members[0]))
        except RadlabDataError as exc:
            raise UploadError(user_message(exc, request, self.scratch)) from None

    def pictures(self, name: str, request: ServeRequest) -> list[dict[str, str]]:
        """The pictures as the JSON answer carries them: PNGs in base64, with their captions."""
        return [
            {"name": item.name, "png_base64": png_base64(item.image), "caption": item.caption}
            for item in self.explanations(name, request)
        ]

    def dicom_results(self, name: str, request: ServeRequest, prediction: dict[str, Any], explain: bool) -> list[Any]:
        """The DICOM results (SR, and with `explain` Secondary Captures) of an answered request; stored on the
        `--stow` server too."""
        model = self.models[name]
        build = model.spec.dicom
        if build is None:
            raise RadlabError(f"the {model.plan.task.name} task has no DICOM results")
        pictures = self.explanations(name, request) if explain else []
        datasets = build([f.path for f in request.files], prediction, pictures)
        if self.stow:
            from radlab.core.io.dicomweb import stow

            try:
                stow(self.stow, datasets)
            except RadlabError as exc:
                raise StowError(str(exc)) from None
        return datasets


def png_base64(image: Any) -> str:
    """An RGB uint8 array as a base64 PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def user_message(error: RadlabDataError, request: ServeRequest, scratch: Path) -> str:
    """A reader's error about the service's own copies, told in the client's file names: a path under the
    scratch folder that is (a hard link of) an uploaded file becomes that file's name, any other one (the
    batch's input list) is left out."""
    text = str(error).replace(" (--strict)", "")
    by_inode = {}
    for staged in request.files:
        try:
            by_inode[os.stat(staged.path).st_ino] = staged.name
        except OSError:
            continue
    root = re.escape(str(scratch))

    def named(match: re.Match[str]) -> str:
        try:
            return by_inode.get(os.stat(match.group(0)).st_ino, "")
        except OSError:
            return ""

    text = re.sub(root + r"/[^\s:,'\"]*", named, text)
    return re.sub(r"^(:\d+)?:\s*", "", text).strip() or "unreadable upload"
