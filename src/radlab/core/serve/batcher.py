"""Micro-batching: requests that arrive together are predicted together.

Requests wait in a bounded queue; the worker takes the first, then keeps taking until it holds `max_batch`
or `max_wait_s` has passed since the first, and runs the batch on the one executor thread every model shares
(the cores do the parallel work inside it). While a batch runs the next one gathers, so under load batches
fill up by themselves and throughput grows with the number of clients; a lone request waits `max_wait_s` at
most. A full queue refuses at once (503) rather than letting latency grow without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from radlab.core.errors import RadlabError

T = TypeVar("T")
R = TypeVar("R")


class Busy(RadlabError):
    """The queue is full: the service is answering as fast as it can (503, try again)."""


@dataclass
class BatchStats:
    """How the batches went: their count, the requests in them and the largest."""

    batches: int = 0
    requests: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    def add(self, size: int) -> None:
        self.batches += 1
        self.requests += size
        self.largest = max(self.largest, size)
        self.sizes[size] = self.sizes.get(size, 0) + 1


@dataclass
class _Job(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class MicroBatcher(Generic[T, R]):
    """Groups `submit`ted items into calls of `run_batch(items) -> one result or exception per item`."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[T]], Sequence[R | BaseException]],
        executor: Executor,
        *,
        max_batch: int,
        max_wait_s: float,
        capacity: int,
    ) -> None:
        self.run_batch = run_batch
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.queue: asyncio.Queue[_Job[T, R]] = asyncio.Queue(maxsize=capacity)
        self.stats = BatchStats()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Answer what is queued, then stop the worker."""
        while not self.queue.empty():
            await asyncio.sleep(0.01)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def submit(self, item: T, timeout_s: float) -> R:
        """The item's result once its batch has run; Busy when the queue is full, TimeoutError after
        `timeout_s` (the item is then dropped from its batch if the batch has not started)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait(_Job(item, future))
        except asyncio.QueueFull:
            raise Busy(f"the service is busy ({self.queue.maxsize} requests waiting); try again") from None
        return await asyncio.wait_for(future, timeout_s)

    async def _gather(self) -> list[_Job[T, R]]:
        jobs = [await self.queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(jobs) < self.max_batch:
            try:
                jobs.append(self.queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self.queue.get(), left))
            except TimeoutError:
                break
        return [job for job in jobs if not job.future.done()]  # timed out (or cancelled) while waiting

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            if not jobs:
                continue
            self.stats.add(len(jobs))
            try:
                results = await loop.run_in_executor(self.executor, self.run_batch, [job.item for job in jobs])
            except Exception as exc:  # the batch function's own failure: every request in it gets it
                results = [exc] * len(jobs)
            for job, result in zip(jobs, results, strict=True):
                if job.future.done():
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
