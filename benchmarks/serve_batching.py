"""Micro-batching in `radlab serve`: throughput with batches of up to 8 against one request at a time, on the
same model, the same requests and the same clients, measured in one run.

Two servers of one run are started side by side (`--max-batch 1` and `--max-batch 8`; both idle while the
other is measured); each round sends REQUESTS requests from CLIENTS concurrent clients to one, then the
other, alternating which goes first; the ratio is the median of the per-round ratios. Prints one JSON line.

    python benchmarks/serve_batching.py --model radlab-demo/mura/run --files STUDY/*.png [--rounds 3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx


def start(model: Path, max_batch: int, wait_ms: float) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "radlab", "serve", "--model", str(model), "--port", "0", "--device", "cpu"]
    command += ["--max-batch", str(max_batch), "--max-wait-ms", str(wait_ms)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if match := re.match(r"serving on (http://\S+)", line):
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe drained
            return process, match.group(1)
    raise SystemExit(f"radlab serve exited with {process.wait()}")


def load_run(url: str, files: list[Path], requests: int, clients: int) -> dict[str, float]:
    body = [("files", (path.name, path.read_bytes())) for path in files]
    local = threading.local()

    def one(_: int) -> float:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=120)
        started = time.perf_counter()
        reply = local.client.post(f"{url}/predict", files=body)
        reply.raise_for_status()
        return time.perf_counter() - started

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        latencies = sorted(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {"requests_per_s": requests / wall, "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--files", type=Path, nargs="+", required=True, help="What one request sends.")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    servers = {"one_at_a_time": start(args.model, 1, 0), "micro_batched": start(args.model, 8, 10)}
    try:
        for _, url in servers.values():  # warm-up, untimed
            load_run(url, args.files, 16, args.clients)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        for k in range(args.rounds):
            order = list(servers) if k % 2 == 0 else list(reversed(servers))
            for name in order:
                rounds[name].append(load_run(servers[name][1], args.files, args.requests, args.clients))
        ratios = [
            b["requests_per_s"] / a["requests_per_s"]
            for a, b in zip(rounds["one_at_a_time"], rounds["micro_batched"], strict=True)
        ]
        result: dict[str, Any] = {
            "model": str(args.model),
            "files_per_request": len(args.files),
            "clients": args.clients,
            "requests_per_round": args.requests,
            "cores": os.cpu_count(),
            "speedup": statistics.median(ratios),
            "ratios": ratios,
            **{
                name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in rounds.items()
            },
        }
        print(json.dumps(result))
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
