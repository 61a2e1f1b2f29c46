"""`radlab serve`: check the models, start uvicorn, print `serving on http://HOST:PORT` once every model is
loaded, and on SIGTERM or Ctrl-C stop accepting, answer the requests in flight and exit 0."""

from __future__ import annotations

import shutil
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from radlab.core.errors import RadlabConfigError, RadlabDataError, unreadable
from radlab.core.serve.models import plan_models
from radlab.core.serve.service import Limits, Service
from radlab.core.serve.staging import new_scratch


@dataclass(frozen=True)
class ServeOptions:
    """What `radlab serve` was asked (see its --help)."""

    models: list[Path]
    host: str = "127.0.0.1"
    port: int = 8000
    engine: str = "torch"
    device: str = "auto"
    max_batch: int = 8
    max_wait_ms: float = 10.0
    queue: int = 64
    max_upload_bytes: int = 256 * 1024 * 1024
    timeout_s: float = 120.0
    token_file: Path | None = None
    stow: str | None = None
    access_log: bool = False


def read_token(path: Path) -> str:
    """The bearer token in `path` (surrounding white space dropped); an empty file is refused."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise unreadable(path, exc, "a token file") from None
    except UnicodeDecodeError:
        raise RadlabDataError(path, "is not a text file holding the token") from None
    if not token or any(c.isspace() for c in token):
        raise RadlabDataError(path, "holds no token (one line of non-blank characters)")
    return token


def run_server(options: ServeOptions) -> None:
    """Serve until SIGTERM / Ctrl-C; a model that cannot be loaded stops the server with its error."""
    import uvicorn

    from radlab.core.serve.app import create_app

    plans = plan_models(options.models, options.engine)
    token = read_token(options.token_file) if options.token_file is not None else None
    scratch = new_scratch()
    limits = Limits(
        max_batch=options.max_batch,
        max_wait_s=options.max_wait_ms / 1000,
        queue=options.queue,
        max_upload_bytes=options.max_upload_bytes,
        timeout_s=options.timeout_s,
    )
    service = Service(plans, scratch, options.engine, options.device, limits, options.stow)
    server: uvicorn.Server | None = None

    def announce() -> None:
        threading.Thread(target=_announce_when_listening, args=(server, options.host), daemon=True).start()

    app = create_app(service, token, on_loaded=announce)
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=options.access_log,
        timeout_graceful_shutdown=int(options.timeout_s) + 1,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    watcher = threading.Thread(target=_stop_on_load_error, args=(service, server), daemon=True)
    watcher.start()
    previous = {s: signal.signal(s, _ignore) for s in (signal.SIGTERM, signal.SIGINT)}  # uvicorn handles them
    try:
        server.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        shutil.rmtree(scratch, ignore_errors=True)
    if service.load_error is not None:
        raise service.load_error
    if not server.started:
        raise RadlabConfigError(f"could not listen on {options.host}:{options.port} (is the port taken?)")
    print("stopped: every request in flight was answered", file=sys.stderr, flush=True)


def _ignore(signum: int, frame: object) -> None:
    """A signal uvicorn re-raises after its own graceful shutdown: already handled."""


def _announce_when_listening(server: object, host: str) -> None:
    import time

    while not getattr(server, "started", False):
        time.sleep(0.01)
    sockets = [sock for s in getattr(server, "servers", []) for sock in s.sockets]
    port = sockets[0].getsockname()[1] if sockets else 0
    shown = f"[{host}]" if ":" in host else host
    print(f"serving on http://{shown}:{port}", flush=True)


def _stop_on_load_error(service: Service, server: object) -> None:
    """Stop the server when a model fails to load (the error is raised by run_server after)."""
    while not service.ready.wait(0.05):
        if service.load_error is not None:
            server.should_exit = True  # type: ignore[attr-defined]
            return
