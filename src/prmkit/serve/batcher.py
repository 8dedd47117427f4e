"""One dynamic batcher: requests from many clients, one forward pass per batch.

The asyncio side holds a bounded queue of encoded traces (a request's traces may be split over
batches). When the oldest waiting trace has waited ``max_wait_ms``, or the queue holds a full
batch, the batcher takes the longest run of waiting traces from the front that fits in
``max_batch_traces`` and ``max_batch_tokens`` and scores it with ONE call of the scoring
function in a single worker thread (:meth:`prmkit.score.PRMScorer.score_encoded`, which sorts the
batch by length). The results go back to each request's future; a request completes when all its
traces have scores.

A request that would overflow the queue is refused at once (:class:`QueueFull`, 429). A request
whose client went away or whose time ran out is withdrawn: its waiting traces leave the queue,
and results of a batch already running are dropped; the batch itself and the other requests in
it are not affected.

Example:
    >>> batcher = Batcher(scorer.score_encoded, max_batch_traces=32)  # doctest: +SKIP
    >>> await batcher.start()  # doctest: +SKIP
    >>> scores = await batcher.score(encs, timeout=60.0)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prmkit.prm.formats import Encoded

__all__ = ["BatchStats", "Batcher", "ClientGone", "QueueFull", "ScoringFailed"]

ScoreFn = Callable[[Sequence[Encoded]], list[list[float]]]


class QueueFull(Exception):
    """The queue has no room for the request's traces."""


class ClientGone(Exception):
    """The request was withdrawn because its ``cancel`` awaitable completed (the client left)."""


class ScoringFailed(Exception):
    """The forward pass raised; ``__cause__`` is the original error."""


@dataclass(frozen=True)
class BatchStats:
    """What one forward pass scored."""

    traces: int
    tokens: int
    seconds: float


@dataclass
class _Job:
    """One request's traces and where their scores go."""

    future: asyncio.Future
    results: list[list[float] | None]
    remaining: int

    def withdrawn(self) -> bool:
        return self.future.done()


@dataclass
class _Item:
    job: _Job
    index: int
    enc: Encoded
    arrived: float

    @property
    def length(self) -> int:
        return len(self.enc.input_ids)


class Batcher:
    """Gathers encoded traces from concurrent requests into batches for one worker thread.

    Args:
        score_fn: Scores a batch of encoded traces (one list of step scores per trace, in
            order); runs in the worker thread.
        max_batch_traces: Traces per batch, at most.
        max_batch_tokens: Tokens per batch, at most (a longer single trace gets a batch of its
            own): the sum of lengths when ``padded`` is false, the longest length times the
            count when true (what the scorer's own grouping counts, so a batch is one pass).
        max_wait_ms: How long the oldest waiting trace waits for others.
        max_queue: Traces waiting, at most.
        padded: Count tokens as a padded batch does.
        on_batch: Called on the event loop after each forward pass.
        on_queue: Called with the queue depth (traces) whenever it changes.
    """

    def __init__(
        self,
        score_fn: ScoreFn,
        *,
        max_batch_traces: int = 32,
        max_batch_tokens: int | None = None,
        max_wait_ms: float = 10.0,
        max_queue: int = 1024,
        padded: bool = False,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
    ) -> None:
        self.score_fn = score_fn
        self.max_batch_traces = max_batch_traces
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.padded = padded
        self.on_batch = on_batch
        self.on_queue = on_queue
        self._pending: collections.deque[_Item] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._pool: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Start the gathering loop and the worker thread (call on the serving event loop)."""
        self._wake = asyncio.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prmkit-score")
        self._task = asyncio.get_running_loop().create_task(
            self._run(self._wake), name="prmkit-batcher"
        )

    async def stop(self) -> None:
        """Stop the loop (waiting requests fail) and let a running forward pass finish."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._pending:
            item = self._pending.popleft()
            if not item.job.withdrawn():
                item.job.future.set_exception(ScoringFailed("the server is shutting down"))
        self._queue_changed()
        if self._pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)

    async def score(
        self,
        encs: Sequence[Encoded],
        *,
        timeout: float | None = None,
        cancel: Callable[[], Awaitable[Any]] | None = None,
    ) -> list[list[float]]:
        """Queue ``encs``, wait for their scores (in order).

        Args:
            encs: The request's encoded traces.
            timeout: Seconds to wait (queue + forward pass).
            cancel: Called once the traces are queued; the request is withdrawn when the
                awaitable it returns completes first (e.g. the client left).

        Raises:
            QueueFull: no room for ``len(encs)`` more traces.
            TimeoutError: ``timeout`` passed first.
            ClientGone: ``cancel`` completed first.
            ScoringFailed: the forward pass raised.
        """
        if self._task is None or self._wake is None:
            raise RuntimeError("Batcher.start() was not called")
        if not encs:
            return []
        if len(self._pending) + len(encs) > self.max_queue:
            raise QueueFull(
                f"{len(self._pending)} traces are waiting and the queue holds {self.max_queue}"
            )
        loop = asyncio.get_running_loop()
        job = _Job(loop.create_future(), [None] * len(encs), len(encs))
        now = loop.time()
        self._pending.extend(_Item(job, i, e, now) for i, e in enumerate(encs))
        self._queue_changed()
        self._wake.set()
        waiters: set[asyncio.Future] = {job.future}
        watcher = asyncio.ensure_future(cancel()) if cancel is not None else None
        if watcher is not None:
            waiters.add(watcher)
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if watcher is not None:
                watcher.cancel()
            if not job.future.done():
                job.future.cancel()
                self._withdraw(job)
        if job.future in done:
            return job.future.result()
        if watcher is not None and watcher in done:
            raise ClientGone("the client went away")
        raise TimeoutError(f"no scores within {timeout} s")

    def _withdraw(self, job: _Job) -> None:
        """Drop a withdrawn job's waiting traces from the queue."""
        before = len(self._pending)
        self._pending = collections.deque(it for it in self._pending if it.job is not job)
        if len(self._pending) != before:
            self._queue_changed()

    def _queue_changed(self) -> None:
        if self.on_queue is not None:
            self.on_queue(len(self._pending))

    def _cost(self, count: int, longest: int, total: int) -> int:
        return longest * count if self.padded else total

    def _full(self) -> bool:
        """Whether the waiting traces already fill a batch."""
        if len(self._pending) >= self.max_batch_traces:
            return True
        if self.max_batch_tokens is None:
            return False
        longest = total = 0
        for count, it in enumerate(self._pending, start=1):
            longest, total = max(longest, it.length), total + it.length
            if self._cost(count, longest, total) >= self.max_batch_tokens:
                return True
        return False

    def _take(self) -> list[_Item]:
        """The longest run of waiting traces from the front that fits in one batch."""
        batch: list[_Item] = []
        longest = total = 0
        while self._pending and len(batch) < self.max_batch_traces:
            it = self._pending[0]
            if it.job.withdrawn():
                self._pending.popleft()
                continue
            longest2, total2 = max(longest, it.length), total + it.length
            cap = self.max_batch_tokens
            if batch and cap is not None and self._cost(len(batch) + 1, longest2, total2) > cap:
                break
            batch.append(self._pending.popleft())
            longest, total = longest2, total2
        self._queue_changed()
        return batch

    async def _run(self, wake: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                wake.clear()
                await wake.wait()
                continue
            deadline = self._pending[0].arrived + self.max_wait
            while True:
                wake.clear()
                left = deadline - loop.time()
                if left <= 0 or self._full() or not self._pending:
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), left)
            batch = self._take()
            if not batch:
                continue
            start = time.perf_counter()
            try:
                scores = await loop.run_in_executor(
                    self._pool, self.score_fn, [it.enc for it in batch]
                )
                if len(scores) != len(batch):
                    raise RuntimeError(f"{len(scores)} results for a batch of {len(batch)}")
            except Exception as exc:  # one failed pass fails its requests, not the server
                failure = ScoringFailed(f"{type(exc).__name__}: {exc}")
                failure.__cause__ = exc
                for it in batch:
                    if not it.job.withdrawn():
                        it.job.future.set_exception(failure)
                continue
            if self.on_batch is not None:
                self.on_batch(
                    BatchStats(
                        len(batch), sum(it.length for it in batch), time.perf_counter() - start
                    )
                )
            for it, s in zip(batch, scores, strict=True):
                job = it.job
                if job.withdrawn():
                    continue
                job.results[it.index] = s
                job.remaining -= 1
                if job.remaining == 0:
                    job.future.set_result(job.results)
