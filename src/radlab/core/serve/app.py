"""The HTTP face of the service (shared/spec/serve.md): FastAPI routes, typed answers, JSON errors.

Every error is `{"error": "<one line naming the file at fault>"}` with a 4xx status; a user's bad input never
gets a 500 and never stops the service. The bearer token and the body-size limit are checked before a byte
of the body is read.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from radlab.core.console import warn
from radlab.core.errors import RadlabError
from radlab.core.serve.batcher import Busy
from radlab.core.serve.service import Service, StowError, UploadError
from radlab.core.serve.spec import RequestShapeError
from radlab.core.serve.staging import staged

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
OPEN_PATHS = ("/health",)


class ServeError(Exception):
    """An answer other than 200: its status and the one line of its `error`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _BodyTooLarge(Exception):
    pass


class Health(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    status: str = "ready"
    models: list[str]


class ModelInfo(BaseModel):
    """One loaded model, as `GET /models` lists it."""

    name: str
    task: str
    preset: str
    engine: str
    metrics: dict[str, Any]
    weights_sha256: str = Field(description="sha256 of the weights file (several files: of their sha256sum lines)")
    weights: dict[str, str] = Field(description="sha256 of every weights file, by path inside the run")


class Picture(BaseModel):
    name: str
    png_base64: str
    caption: str = ""


class Answer(BaseModel):
    """A prediction: the task's `prediction` object (serve.md's table) and, with explain=true, pictures."""

    task: str
    model: str
    prediction: dict[str, Any]
    pictures: list[Picture] | None = None


class ErrorAnswer(BaseModel):
    error: str


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Guard:
    """ASGI middleware: the bearer token (401, nothing read or computed) and the body-size limit (413, from
    Content-Length before reading, and counted while reading for a body that does not say its size)."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str | None, max_bytes: int) -> None:
        self.app = app
        self.token = token
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token is not None and scope.get("path") not in OPEN_PATHS:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                reply = _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
                await reply(scope, receive, send)
                return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await _error(413, self._too_large(int(length)))(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _BodyTooLarge
            return message

        await self.app(scope, counted, send)

    def _too_large(self, size: int | None = None) -> str:
        told = f"{size} bytes" if size is not None else "the request body"
        return f"{told} is over the service's limit of {self.max_bytes} bytes (--max-upload-mb)"


def create_app(service: Service, token: str | None = None, on_loaded: Callable[[], None] | None = None) -> FastAPI:
    """The FastAPI application of `service`; its models load in the background once it starts (`/ready`
    says when), then `on_loaded` runs (the server prints its `serving on` line)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def load() -> None:
            service.load()
            if service.load_error is None:
                loop.call_soon_threadsafe(started)

        def started() -> None:
            service.start_batchers()
            if on_loaded is not None:
                on_loaded()

        loader = loop.run_in_executor(None, load)
        yield
        await asyncio.gather(loader, return_exceptions=True)
        await service.stop()

    app = FastAPI(
        title="radlab serve",
        description="Predictions of trained radlab runs (shared/spec/serve.md).",
        lifespan=lifespan,
        responses={400: {"model": ErrorAnswer}, 401: {"model": ErrorAnswer}, 404: {"model": ErrorAnswer}},
    )
    guard_limit = service.limits.max_upload_bytes

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return _error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        warn(f"internal error answering {request.url.path}: {type(exc).__name__}: {exc}")
        traceback.print_exception(exc)
        return _error(500, f"internal error ({type(exc).__name__}); see the service's log")

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        """200 as soon as the process listens."""
        return Health()

    @app.get("/ready", response_model=Ready, responses={503: {"model": ErrorAnswer}})
    async def ready() -> Ready:
        """200 once every model is loaded (and its batcher runs), 503 before."""
        if not service.ready.is_set() or len(service.batchers) < len(service.plans):
            loaded = len(service.models)
            raise ServeError(503, f"loading models: {loaded} of {len(service.plans)} loaded")
        return Ready(models=list(service.models))

    @app.get("/models", response_model=list[ModelInfo])
    async def models() -> list[ModelInfo]:
        """The loaded models: name, task, preset, engine, metrics, weights' sha256."""
        return [ModelInfo(**model.describe()) for model in service.models.values()]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        """The web page: pick a model, drop files, see the prediction and the picture (no CDN: offline)."""
        return HTMLResponse((files("radlab.core.serve") / "static" / "index.html").read_text(encoding="utf-8"))

    @app.post(
        "/predict",
        response_model=Answer,
        response_model_exclude_none=True,
        responses={
            200: {"content": {"application/dicom": {}}, "description": "JSON, or DICOM results on Accept"},
            413: {"model": ErrorAnswer},
            415: {"model": ErrorAnswer},
            422: {"model": ErrorAnswer},
            503: {"model": ErrorAnswer},
            504: {"model": ErrorAnswer},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["files"],
                            "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                        }
                    }
                },
            }
        },
    )
    async def predict(
        request: Request,
        model: str | None = Query(None, description="The model's name; may be left out when one is loaded."),
        explain: bool = Query(False, description="Also return the pictures `radlab explain` draws."),
    ) -> Any:
        """Predict one case (serve.md's table says what `files` holds per task)."""
        name = _pick_model(service, model)
        served = service.models[name]
        spec = served.spec
        wants_dicom = "application/dicom" in request.headers.get("accept", "")
        if wants_dicom and spec.dicom is None:
            raise ServeError(406, f"the {served.plan.task.name} task has no DICOM results; ask for JSON")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ServeError(415, "send the files as multipart/form-data, in the field `files`")
        try:
            form = await request.form(max_files=10_000, max_fields=100)
        except _BodyTooLarge:
            raise ServeError(413, f"the request body is over the service's limit of {guard_limit} bytes") from None
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more
        except MultiPartException as exc:
            raise ServeError(400, f"the request body is not a readable multipart form: {exc}") from None
        try:
            uploads = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
            _check_count(spec.files, len(uploads), served.plan.task.name)
            for upload in uploads:
                if not spec.files.accepts(upload.filename or ""):
                    wanted = ", ".join(spec.files.suffixes or ())
                    raise ServeError(400, f"{upload.filename}: not {spec.files.what} (expected {wanted})")
            pairs = [(u.filename, u.file) for u in uploads]
            with staged(service.scratch, pairs, spec.files.ensure_suffix) as staged_request:
                if spec.check is not None:
                    spec.check(staged_request.files)
                return await _answer(service, name, staged_request, explain, wants_dicom)
        except RequestShapeError as exc:
            raise ServeError(422, str(exc)) from None
        except UploadError as exc:
            raise ServeError(400, str(exc)) from None
        except StowError as exc:
            raise ServeError(502, f"the prediction was made but not stored: {exc}") from None
        except Busy as exc:
            raise ServeError(503, str(exc)) from None
        except TimeoutError:
            raise ServeError(504, f"not answered within {service.limits.timeout_s:g} s (--timeout-s)") from None
        except RadlabError as exc:
            raise ServeError(400, str(exc)) from None
        finally:
            await form.close()

    return Guard(app, token, service.limits.max_upload_bytes)  # type: ignore[return-value]


def _pick_model(service: Service, model: str | None) -> str:
    if not service.ready.is_set() or len(service.batchers) < len(service.plans):
        raise ServeError(503, "the models are still loading; see GET /ready")
    if model is None:
        if len(service.models) > 1:
            raise ServeError(422, f"several models are loaded: give ?model= one of {', '.join(service.models)}")
        return next(iter(service.models))
    if model not in service.models:
        raise ServeError(404, f"no model named {model!r}; loaded: {', '.join(service.models)}")
    return model


def _check_count(rule: Any, count: int, task: str) -> None:
    if count == 0:
        raise ServeError(422, "no files: send them as multipart/form-data in the field `files`")
    if count < rule.min_files or (rule.max_files is not None and count > rule.max_files):
        most = rule.max_files or "any number"
        wanted = f"{rule.min_files}" if rule.max_files == rule.min_files else f"{rule.min_files} to {most}"
        raise ServeError(422, f"{count} files sent; a {task} request holds {wanted}: {rule.what}")


async def _answer(service: Service, name: str, request: Any, explain: bool, wants_dicom: bool) -> Any:
    loop = asyncio.get_running_loop()
    served = service.models[name]
    async with asyncio.timeout(service.limits.timeout_s):
        prediction = await service.batchers[name].submit(request, service.limits.timeout_s)
        if wants_dicom or (service.stow and served.spec.dicom is not None):
            datasets = await loop.run_in_executor(
                service.executor, service.dicom_results, name, request, prediction, explain and wants_dicom
            )
            if wants_dicom:
                return _dicom_response(datasets)
        pictures = await loop.run_in_executor(service.executor, service.pictures, name, request) if explain else None
    return Answer(
        task=served.plan.task.name,
        model=name,
        prediction=prediction,
        pictures=[Picture(**p) for p in pictures] if pictures is not None else None,
    )


def _dicom_response(datasets: list[Any]) -> Response:
    """One DICOM file as application/dicom; several (the SR and its overlays) as multipart/related."""

    def encoded(dataset: Any) -> bytes:
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()

    if len(datasets) == 1:
        return Response(encoded(datasets[0]), media_type="application/dicom")
    boundary = uuid.uuid4().hex
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + encoded(d) + b"\r\n" for d in datasets
    )
    body += f"--{boundary}--\r\n".encode()
    return Response(body, media_type=f'multipart/related; type="application/dicom"; boundary={boundary}')
