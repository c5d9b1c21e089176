"""Dynamic batching: single predict inputs gathered into predict_batch calls.

Plugged into AsyncRunner as its `batcher`: the predict stage of each
request's plan hands its (preprocessed) input to `submit` and awaits its own
output, while preprocess and postprocess still run per request. One worker
per predict slot takes up to `max_size` waiting inputs, waiting at most
`max_wait_s` after the first one for the batch to fill, and runs
``pipeline.batch_call(values)`` through the runner under its semaphore. It does not wait
when no other request is in flight (`inflight`, the server's count): nobody could join, and a
lone client would pay `max_wait_s` on every request for nothing.
Every caller gets its own output, or its own error when the batch fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from packager._errors import NotReadyError, PackagerError, PredictError
from packager._pipeline import Pipeline, check_batch_outputs
from packager._runners import AsyncRunner
from packager._server._logging import background

_log = logging.getLogger("packager.batching")
Waiter = tuple[Any, "asyncio.Future[Any]"]


class DynamicBatcher:
    """Implements the runner's `Batcher` protocol; `depth` is how many inputs wait."""

    def __init__(
        self,
        runner: AsyncRunner,
        pipeline: Pipeline,
        *,
        max_size: int,
        max_wait_s: float,
        workers: int = 1,
        observe_size: Callable[[int], None] | None = None,
        inflight: Callable[[], int] | None = None,
    ) -> None:
        self._runner = runner
        self._pipeline = pipeline
        self._max_size = max_size
        self._max_wait = max_wait_s
        self._observe_size = observe_size
        self._inflight = inflight
        self._running = 0  # inputs in batches that workers are running now
        self._pending: deque[Waiter] = deque()
        self._wakers: list[asyncio.Future[None]] = []
        self._count = workers
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def depth(self) -> int:
        """Inputs waiting to join a batch."""
        return len(self._pending)

    def submit(self, value: Any) -> asyncio.Future[Any]:
        """Queue one input; the future resolves to its output."""
        if self._closed:
            raise NotReadyError("the server is shutting down")
        if not self._workers:
            self._workers = [background(self._work()) for _ in range(self._count)]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((value, future))
        self._wake()
        return future

    def close(self) -> None:
        """Stop the workers; inputs still waiting fail with NotReadyError."""
        self._closed = True
        for task in self._workers:
            task.cancel()
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(NotReadyError("the server is shutting down"))

    def _wake(self) -> None:
        wakers, self._wakers = self._wakers, []
        for waker in wakers:
            _resolve(waker)

    async def _wait(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        waker: asyncio.Future[None] = loop.create_future()
        self._wakers.append(waker)
        handle = loop.call_later(timeout, _resolve, waker) if timeout is not None else None
        try:
            await waker
        finally:
            if handle is not None:
                handle.cancel()

    async def _work(self) -> None:
        while True:
            while not self._pending:
                await self._wait(None)
            await self._fill()
            batch = self._take()
            if batch:
                try:
                    await self._run(batch)
                except Exception:  # _run answers every caller itself; never let a worker die
                    _log.exception("batch worker error")

    async def _fill(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        while len(self._pending) < self._max_size and not self._alone():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await self._wait(remaining)

    def _alone(self) -> bool:
        """Whether no request in flight could still join: all are waiting here or running."""
        return self._inflight is not None and self._inflight() <= len(self._pending) + self._running

    def _take(self) -> list[Waiter]:
        batch: list[Waiter] = []
        while self._pending and len(batch) < self._max_size:
            item = self._pending.popleft()
            if not item[1].done():  # its caller timed out or went away: drop it
                batch.append(item)
        return batch

    async def _run(self, batch: list[Waiter]) -> None:
        if self._observe_size is not None:
            self._observe_size(len(batch))
        runner = self._runner
        self._running += len(batch)
        try:
            await runner.semaphore.acquire()
        except BaseException:
            self._running -= len(batch)
            raise
        try:
            outputs = await runner.timed(self._pipeline.batch_call([value for value, _ in batch]))
        except asyncio.CancelledError:
            _fail_all(batch, NotReadyError("the server is shutting down"))
            raise
        except Exception as exc:
            _fail_all(batch, exc)
            return
        finally:
            self._running -= len(batch)
            runner.semaphore.release()
        try:
            outputs = check_batch_outputs(outputs, len(batch))
        except PredictError as error:
            _fail_all(batch, error)
            return
        for (_, future), output in zip(batch, outputs):
            if not future.done():
                future.set_result(output)


def _fail_all(batch: list[Waiter], exc: Exception) -> None:
    """Give each caller its own error (sharing one exception object would tangle tracebacks)."""
    for _, future in batch:
        if future.done():
            continue
        if isinstance(exc, PackagerError):
            own = type(exc).__new__(type(exc))
            own.__dict__.update(exc.__dict__)
            own.args = exc.args
        else:
            own = PredictError(f"predict_batch raised {type(exc).__name__}: {exc}")
        own.__cause__ = exc.__cause__ if isinstance(exc, PackagerError) else exc
        future.set_exception(own)


def _resolve(waker: asyncio.Future[None]) -> None:
    if not waker.done():
        waker.set_result(None)
