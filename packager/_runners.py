"""Drivers that execute a Pipeline plan: one for plain calls, one for an event loop.

Both only decide *how* a `Call` runs; *which* calls run, in which order, is
the pipeline's plan. Model exceptions become PredictError (or ModelLoadError
while loading) with the original as ``__cause__``; a PackagerError raised on
purpose by model code (an InputError, say) passes through unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from packager._errors import SlotUnavailable
from packager._flow import Flow, Pending
from packager._flow import wrap_error as _wrap
from packager._loop import BackgroundLoop
from packager._pipeline import Call, Plan, is_stream
from packager._slots import Slots
from packager._threads import Job, ThreadPool

Observer = Callable[[str, float], None]


class SyncRunner:
    """Runs plans in the calling thread; async model code runs on a BackgroundLoop.

    At most `concurrency` predict calls run at once across the threads that
    share this runner (`runtime.predict_concurrency`); the others wait. A
    stream holds its slot while each chunk is computed, not between chunks,
    so one thread can read two streams in turn. Preprocess and postprocess
    run outside the limit, as in the server.
    """

    def __init__(self, concurrency: int | None = None) -> None:
        self._loop = BackgroundLoop()
        self._slots = threading.BoundedSemaphore(concurrency) if concurrency else None

    def run(self, plan: Plan) -> Any:
        """Drive `plan` to its end and return its result (an iterator when streaming)."""
        try:
            call = next(plan)
            while True:
                call = plan.send(self.execute(call))
        except StopIteration as stop:
            result = stop.value
        return self._iterate(result) if is_stream(result) else result

    def execute(self, call: Call) -> Any:
        """Run one call here (or, if async, on the background loop); predict waits for a slot."""
        if call.stage == "predict" and self._slots is not None:
            with self._slots:
                return self._execute(call)
        return self._execute(call)

    def close(self) -> None:
        """Stop the background loop (async model code can no longer run)."""
        self._loop.close()

    def _execute(self, call: Call) -> Any:
        try:
            result = call.fn(*call.args)
            return self._loop.run(result) if call.is_async and inspect.iscoroutine(result) else result
        except (Exception, SystemExit) as exc:
            raise _wrap(call, exc) from exc

    def _step(self, step: Callable[[], Any]) -> Any:
        """One chunk of a stream, computed while holding a predict slot."""
        if self._slots is None:
            return step()
        with self._slots:
            return step()

    def _iterate(self, stream: Any) -> Iterator[Any]:
        if not hasattr(stream, "__anext__"):
            try:
                while True:
                    chunk = self._step(lambda: next(stream, _DONE))
                    if chunk is _DONE:
                        return
                    yield chunk
            except (Exception, SystemExit) as exc:
                raise _wrap(_PREDICT, exc) from exc
            finally:
                stream.close()
        try:
            while True:
                try:
                    chunk = self._step(lambda: self._loop.run(stream.__anext__()))
                except StopAsyncIteration:
                    return
                except (Exception, SystemExit) as exc:
                    raise _wrap(_PREDICT, exc) from exc
                yield chunk
        finally:
            self._loop.run(stream.aclose())


class Batcher(Protocol):
    """Gathers single predict inputs into predict_batch calls (see _server/_batching.py)."""

    def submit(self, value: Any) -> Awaitable[Any]: ...


class AsyncRunner:
    """Runs plans on an event loop: sync code in worker threads, predict limited to `concurrency`.

    A request's sync stages run back to back in a worker thread (a `Flow`,
    see _flow.py), with a sync predict behind `Slots`; an async stage runs on
    the loop, an async predict behind `semaphore`. Preprocess and postprocess
    never hold a predict slot. `observe(stage, seconds)` is told how long
    each stage took. With a `batcher`, the predict stage hands its input to
    it instead. Build it inside the running loop (Python 3.9's
    asyncio.Semaphore binds to the loop current at construction).
    """

    def __init__(
        self,
        *,
        concurrency: int = 1,
        threads: int | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self._batcher: Batcher | None = None
        self._waiting = 0
        self._observe = observe
        self._slots = Slots(concurrency)
        self._pool = ThreadPool(threads or concurrency + 8)

    @property
    def batcher(self) -> Batcher | None:
        """Where predict inputs go when the model batches (set by the server)."""
        return self._batcher

    @batcher.setter
    def batcher(self, batcher: Batcher | None) -> None:
        self._batcher = batcher
        self._slots.batched = batcher is not None

    @property
    def slots(self) -> int:
        """How many predict calls may run at once (runtime.predict_concurrency)."""
        return self._slots.size

    @property
    def stuck(self) -> int:
        """Sync predict calls still running although their request gave up on them (timed out)."""
        return self._slots.stuck

    @property
    def waiting(self) -> int:
        """Predict calls waiting for a slot."""
        return self._waiting + len(self._slots.line)

    async def run(self, plan: Plan) -> Any:
        """Drive `plan`; a stream comes back as an async iterator that holds the predict slot."""
        try:
            call = next(plan)
            while True:
                if call.is_async or (call.stage == "predict" and self._batcher is not None):
                    result = await (self._predict(call) if call.stage == "predict" else self.timed(call))
                    call = plan.send(result)
                    continue
                outcome = await self._in_threads(plan, call)
                if type(outcome) is not Pending:
                    return outcome
                call = outcome.call
        except StopIteration as stop:
            return stop.value

    async def _in_threads(self, plan: Plan, call: Call) -> Any:
        """Let worker threads run the plan from `call` until it ends or needs the loop."""
        flow = Flow(plan, call, self._slots, self._pool.put, self._observe)
        self._pool.put(flow)
        try:
            outcome = await flow.future
        except asyncio.CancelledError:
            if flow.abandon():
                raise SlotUnavailable(
                    f"no predict slot came free in time (all {self._slots.size} busy); retry shortly"
                ) from None
            raise
        if flow.holds_stream and is_stream(outcome):
            return ChunkStream(outcome, flow.release_slot, self._pool)
        return outcome

    async def execute(self, call: Call) -> Any:
        """Run one call: awaited if async, else in a worker thread."""
        try:
            if call.is_async:
                result = call.fn(*call.args)
                return await result if inspect.isawaitable(result) else result
            return await self._pool.submit(call.fn, call.args).future
        except (Exception, SystemExit) as exc:  # model code exiting must not stop the server
            raise _wrap(call, exc) from exc

    async def timed(self, call: Call) -> Any:
        """`execute`, reporting the time taken to the observer."""
        started = time.perf_counter()
        try:
            return await self.execute(call)
        finally:
            if self._observe is not None:
                self._observe(call.stage, time.perf_counter() - started)

    async def _predict(self, call: Call) -> Any:
        if self._batcher is not None:
            return await self._batcher.submit(call.args[0])
        self._waiting += 1
        try:
            await self.semaphore.acquire()
        finally:
            self._waiting -= 1
        try:
            result = await self.timed(call)
        except BaseException:
            self.semaphore.release()
            raise
        if is_stream(result):
            return ChunkStream(result, self.semaphore.release, self._pool)
        self.semaphore.release()
        return result

    def close(self) -> None:
        """Let the worker threads go (running calls finish first)."""
        self._pool.close()


class ChunkStream:
    """The chunks of a streaming predict, as an async iterator.

    Sync generators are stepped in worker threads. `release` (the predict
    slot) is called exactly once: when the stream ends, fails or is closed,
    even if it was never iterated. Whoever receives one must exhaust it or
    call `aclose()`. Closing while a step still runs in its thread closes
    the generator (and frees the slot) as soon as that step returns.
    """

    def __init__(self, stream: Any, release: Callable[[], None], pool: ThreadPool) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release
        self._pool = pool
        self._async = hasattr(stream, "__anext__")
        self._job: Job | None = None

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> Any:
        if self._release is None:
            raise StopAsyncIteration
        try:
            if self._async:
                return await self._stream.__anext__()
            self._job = self._pool.submit(next, (self._stream, _DONE))
            chunk = await self._job.future
        except StopAsyncIteration:
            await self.aclose()
            raise
        except Exception as exc:
            await self.aclose()
            raise _wrap(_PREDICT, exc) from exc
        if chunk is _DONE:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Stop the model's generator and free the predict slot (idempotent).

        A sync generator is closed in a worker thread (once a step still
        running there returns); the slot stays taken until it is closed.
        """
        release, self._release = self._release, None
        if release is None:
            return
        if self._async:
            try:
                await self._stream.aclose()
            finally:
                release()
            return
        busy = self._job is not None and not self._job.finished
        if busy:
            self._job.after = lambda: self._close_detached(release)  # type: ignore[union-attr]
        else:
            try:
                await self._pool.submit(self._stream.close, ()).future
            finally:
                release()

    def _close_detached(self, release: Callable[[], None]) -> None:
        job = self._pool.submit(self._stream.close, ())
        job.detached = True
        job.after = release


_DONE = object()
_PREDICT = Call("predict", lambda: None, (), False)
