"""`radlab serve` as a user starts it, on loopback: the ready line, a load run of concurrent clients, a client
that disconnects mid-upload, a graceful stop on SIGTERM, and the web page in headless Chromium."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.core.serve.cases import CASES

pytestmark = pytest.mark.xdist_group("mura")  # the MURA tiny run is made once, on one worker


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    scratch_parent: Path
    output: list[str] = field(default_factory=list)

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]

    def scratch_files(self) -> list[Path]:
        return [p for p in self.scratch_parent.rglob("*") if p.is_file()]


def start(run: Path, tmp: Path, *options: str) -> Server:
    """`radlab serve --model RUN --port 0 OPTIONS` with its scratch under `tmp`; once it says `serving on`."""
    scratch = tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "radlab", "serve", "--model", str(run), "--port", "0", "--device", "cpu", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch), "OMP_NUM_THREADS": "2"},
    )
    lines: list[str] = []
    found: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if not found and (match := re.match(r"serving on (http://\S+)", line)):
                found.append(match.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 180
    while not found:
        assert process.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.05)
    return Server(process, found[0], scratch, lines)


def stop(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    return server.process.wait(timeout=60)


@pytest.fixture(scope="module")
def mura_server(tiny, tmp_path_factory) -> Iterator[Server]:
    server = start(tiny.run("mura"), tmp_path_factory.mktemp("serve"))
    yield server
    assert stop(server) == 0, "".join(server.output)


def _files(case: list[tuple[str, Path]]) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (name, path.read_bytes())) for name, path in case]


def test_a_load_run_of_8_clients_gets_no_error_and_memory_stays_flat(mura_server, tiny, capsys):
    cases = CASES["mura"](tiny.data("mura"))
    bodies = [_files(cases[k % len(cases)]) for k in range(200)]
    with httpx.Client(timeout=60) as client:
        assert client.get(f"{mura_server.url}/ready").status_code == 200
        for body in bodies[:16]:  # warm up: allocator pools, lazy imports
            assert client.post(f"{mura_server.url}/predict", files=body).status_code == 200
    warm_rss = mura_server.rss_mb()
    local = threading.local()

    def one(body: list) -> tuple[int, float]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=60)
        started = time.perf_counter()
        reply = local.client.post(f"{mura_server.url}/predict", files=body)
        return reply.status_code, time.perf_counter() - started

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, bodies))
    wall = time.perf_counter() - started
    codes = [code for code, _ in results]
    latencies = sorted(seconds for _, seconds in results)
    assert codes.count(200) == 200, {c: codes.count(c) for c in set(codes)}
    quantiles = statistics.quantiles(latencies, n=100)
    end_rss = mura_server.rss_mb()
    with capsys.disabled():
        print(
            f"\nserve load (mura tiny run, 8 clients, 200 requests): {200 / wall:.1f} req/s, "
            f"p50 {quantiles[49] * 1000:.0f} ms, p95 {quantiles[94] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms; "
            f"RSS {warm_rss:.0f} -> {end_rss:.0f} MB"
        )
    assert end_rss <= warm_rss * 1.10 + 16, (warm_rss, end_rss)
    assert mura_server.scratch_files() == []


def test_a_client_that_disconnects_mid_upload_costs_nothing(mura_server, tiny):
    host, port = re.match(r"http://([^:/]+):(\d+)", mura_server.url).groups()  # type: ignore[union-attr]
    for _ in range(3):
        with socket.create_connection((host, int(port))) as raw:
            head = (
                "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                'Content-Length: 1000000\r\n\r\n--b\r\nContent-Disposition: form-data; name="files"; '
                'filename="half.png"\r\nContent-Type: image/png\r\n\r\n'
            )
            raw.sendall(head.encode() + b"\x89PNG" + b"\0" * 5000)
        time.sleep(0.2)
    good = CASES["mura"](tiny.data("mura"))[0]
    reply = httpx.post(f"{mura_server.url}/predict", files=_files(good), timeout=60)
    assert reply.status_code == 200, reply.text
    assert mura_server.scratch_files() == []


def test_sigterm_answers_the_requests_in_flight_then_exits_0(tiny, tmp_path):
    server = start(tiny.run("mura"), tmp_path, "--max-wait-ms", "1500")  # a lone request waits 1.5 s
    good = CASES["mura"](tiny.data("mura"))[0]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, f"{server.url}/predict", files=_files(good), timeout=60)
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        reply = pending.result()
    assert reply.status_code == 200, reply.text
    assert server.process.wait(timeout=60) == 0, "".join(server.output)
    assert "stopped" in "".join(server.output)
    assert server.scratch_files() == [] and list(server.scratch_parent.iterdir()) == []


def test_a_model_that_cannot_load_is_one_line_and_exit_1(tiny, tmp_path):
    import shutil

    run = tmp_path / "broken"
    shutil.copytree(tiny.run("mura"), run)
    (run / "model.safetensors").write_bytes(b"not weights")
    result = subprocess.run(
        [sys.executable, "-m", "radlab", "serve", "--model", str(run), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "model.safetensors" in result.stderr and "Traceback" not in result.stderr


def test_the_web_page_shows_the_prediction_and_the_picture(mura_server, tiny, tmp_path):
    from tests.core.report.test_render import CHROMIUM_FLAGS, _chromium

    executable = _chromium()
    from playwright.sync_api import sync_playwright

    case = CASES["mura"](tiny.data("mura"))[0]
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{mura_server.url}/")
            page.wait_for_function("document.querySelectorAll('#model option').length > 0", timeout=30_000)
            page.set_input_files("#files", [str(path) for _, path in case])
            page.click("#send")
            page.wait_for_selector("#pictures img", timeout=60_000)
            summary = page.inner_text("#summary")
            shown = page.eval_on_selector("#pictures img", "img => img.naturalWidth")
        finally:
            browser.close()
    assert "probability" in summary and "label" in summary
    assert shown > 8
    assert errors == []
