"""Micro-batching: concurrent requests share a batch, a lone one waits max_wait at most, a full queue refuses
at once and a request that timed out is dropped from its batch."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from radlab.core.serve.batcher import Busy, MicroBatcher


def run(coroutine):
    return asyncio.run(coroutine)


def make(max_batch=4, max_wait_s=0.05, capacity=64, delay=0.0, fail=()):
    seen: list[list[int]] = []

    def work(items):
        seen.append(list(items))
        time.sleep(delay)
        return [ValueError(item) if item in fail else item * 10 for item in items]

    return MicroBatcher(
        work, ThreadPoolExecutor(1), max_batch=max_batch, max_wait_s=max_wait_s, capacity=capacity
    ), seen


def test_concurrent_requests_are_batched_up_to_max_batch():
    async def go():
        batcher, seen = make(max_batch=4)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(k, 5) for k in range(10)))
        await batcher.stop()
        return results, seen, batcher.stats

    results, seen, stats = run(go())
    assert results == [k * 10 for k in range(10)]
    assert [len(b) for b in seen] == [4, 4, 2]
    assert sorted(x for b in seen for x in b) == list(range(10))
    assert (stats.batches, stats.requests, stats.largest) == (3, 10, 4)


def test_a_lone_request_waits_max_wait_at_most():
    async def go():
        batcher, _ = make(max_wait_s=0.2)
        batcher.start()
        started = time.perf_counter()
        result = await batcher.submit(1, 5)
        elapsed = time.perf_counter() - started
        await batcher.stop()
        return result, elapsed

    result, elapsed = run(go())
    assert result == 10 and 0.2 <= elapsed < 2.0


def test_one_failing_item_fails_only_itself():
    async def go():
        batcher, _ = make(fail={2})
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(k, 5) for k in range(4)), return_exceptions=True)
        await batcher.stop()
        return results

    results = run(go())
    assert results[:2] == [0, 10] and isinstance(results[2], ValueError) and results[3] == 30


def test_a_full_queue_refuses_at_once():
    async def go():
        gate = threading.Event()
        batcher = MicroBatcher(
            lambda items: gate.wait(5) and list(items), ThreadPoolExecutor(1), max_batch=1, max_wait_s=0, capacity=2
        )
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(0, 5))
        await asyncio.sleep(0.1)  # the first is running; two more fill the queue
        queued = [asyncio.ensure_future(batcher.submit(k, 5)) for k in (1, 2)]
        await asyncio.sleep(0)
        with pytest.raises(Busy):
            await batcher.submit(3, 5)
        gate.set()
        results = await asyncio.gather(first, *queued)
        await batcher.stop()
        return results

    assert run(go()) == [0, 1, 2]


def test_a_request_that_timed_out_waiting_is_not_predicted():
    async def go():
        batcher, seen = make(max_batch=1, max_wait_s=0, delay=0.3)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(1, 5))
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            await batcher.submit(2, 0.1)
        await first
        await asyncio.sleep(0.1)
        await batcher.stop()
        return seen

    assert run(go()) == [[1]]
