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
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Protocol

from packager._errors import ModelLoadError, PackagerError, PredictError
from packager._pipeline import Call, Plan, is_stream
from packager._threads import Held, Job, ThreadPool

Observer = Callable[[str, float], None]


def _wrap(call: Call, exc: Exception) -> PackagerError:
    if isinstance(exc, PackagerError):
        return exc
    kind = ModelLoadError if call.stage in ("init", "load") else PredictError
    name = "__init__" if call.stage == "init" else call.stage
    return kind(f"{name} raised {type(exc).__name__}: {exc}")


class BackgroundLoop:
    """An event loop in a daemon thread, for running async model code from sync callers.

    Sync callers (a script, or a Jupyter cell whose own loop is already
    running) block on a future instead of nesting loops.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run `coro` on the background loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._get()).result()

    def _get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="packager-loop", daemon=True).start()
                self._loop = loop
            return self._loop


class SyncRunner:
    """Runs plans in the calling thread; async model code runs on a BackgroundLoop."""

    def __init__(self) -> None:
        self._loop = BackgroundLoop()

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
        """Run one call here (or, if async, on the background loop)."""
        try:
            result = call.fn(*call.args)
            return self._loop.run(result) if call.is_async and inspect.iscoroutine(result) else result
        except Exception as exc:
            raise _wrap(call, exc) from exc

    def _iterate(self, stream: Any) -> Iterator[Any]:
        if not hasattr(stream, "__anext__"):
            try:
                yield from stream
            except Exception as exc:
                raise _wrap(_PREDICT, exc) from exc
            return
        try:
            while True:
                try:
                    chunk = self._loop.run(stream.__anext__())
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    raise _wrap(_PREDICT, exc) from exc
                yield chunk
        finally:
            self._loop.run(stream.aclose())


class Batcher(Protocol):
    """Gathers single predict inputs into predict_batch calls (see _server/_batching.py)."""

    def submit(self, value: Any) -> Awaitable[Any]: ...


class AsyncRunner:
    """Runs plans on an event loop: sync code in worker threads, predict limited to `concurrency`.

    A sync predict runs on one of `concurrency` dedicated predict threads
    (the thread is the slot: it stays taken while a stream it returned is
    read, and while a call that outlived its caller still runs); an async
    predict runs behind `semaphore`. Preprocess and postprocess run outside
    either. `observe(stage, seconds)` is told how long each stage took.
    With a `batcher`, the predict stage hands its input to it instead.
    Build it inside the running loop (Python 3.9's asyncio.Semaphore binds
    to the loop current at construction).
    """

    def __init__(
        self,
        *,
        concurrency: int = 1,
        threads: int | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.batcher: Batcher | None = None
        self._waiting = 0
        self._observe = observe
        self._pool = ThreadPool(threads or concurrency + 8)
        self._lane = ThreadPool(concurrency, name="packager-predict", hold_streams=True)

    @property
    def waiting(self) -> int:
        """Predict calls waiting for a slot."""
        return self._waiting + self._lane.depth

    async def run(self, plan: Plan) -> Any:
        """Drive `plan`; a stream comes back as an async iterator that holds the predict slot."""
        try:
            call = next(plan)
            while True:
                if call.stage == "predict":
                    lane = self.batcher is None and not call.is_async
                    result = await (self._in_lane(call) if lane else self._predict(call))
                else:
                    result = await self.timed(call)
                call = plan.send(result)
        except StopIteration as stop:
            return stop.value

    async def execute(self, call: Call) -> Any:
        """Run one call: awaited if async, else in a worker thread."""
        try:
            if call.is_async:
                result = call.fn(*call.args)
                return await result if inspect.isawaitable(result) else result
            return await self._pool.submit(call.fn, call.args).future
        except Exception as exc:
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
        if self.batcher is not None:
            return await self.batcher.submit(call.args[0])
        if not call.is_async:
            return await self._in_lane(call)
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

    async def _in_lane(self, call: Call) -> Any:
        job = self._lane.submit(call.fn, call.args)
        try:
            result = await job.future
        except asyncio.CancelledError:
            if job.finished and not job.future.cancelled() and isinstance(job.future.result(), Held):
                job.future.result().release()
            raise
        except Exception as exc:
            raise _wrap(call, exc) from exc
        finally:
            if self._observe is not None and job.finished:
                self._observe(call.stage, job.seconds)
        if isinstance(result, Held):
            return ChunkStream(result.stream, result.release, self._pool, release_closes=True)
        return result

    def close(self) -> None:
        """Let the worker threads go (running calls finish first)."""
        self._pool.close()
        self._lane.close()


class ChunkStream:
    """The chunks of a streaming predict, as an async iterator.

    Sync generators are stepped in worker threads. `release` (the predict
    slot) is called exactly once: when the stream ends, fails or is closed,
    even if it was never iterated. Whoever receives one must exhaust it or
    call `aclose()`. Closing while a step still runs in its thread closes
    the generator (and frees the slot) as soon as that step returns. With
    `release_closes`, `release` closes the generator itself (see `Held`).
    """

    def __init__(
        self, stream: Any, release: Callable[[], None], pool: ThreadPool, *, release_closes: bool = False
    ) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release
        self._pool = pool
        self._async = hasattr(stream, "__anext__")
        self._closes = release_closes
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

        A sync generator held by a predict thread is closed by that thread as
        soon as this lets it go; the slot stays taken until it has.
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
        if self._closes:
            if busy:
                self._job.after = release  # type: ignore[union-attr]
            else:
                release()
        elif busy:
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
