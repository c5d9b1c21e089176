"""Drivers that execute a Pipeline plan: one for plain calls, one for an event loop.

Both only decide *how* a `Call` runs; *which* calls run, in which order, is
the pipeline's plan. Model exceptions become PredictError (or ModelLoadError
while loading) with the original as ``__cause__``; a PackagerError raised on
purpose by model code (an InputError, say) passes through unchanged.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from packager._errors import ModelLoadError, PackagerError, PredictError
from packager._pipeline import Call, Plan, is_stream

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
            return self._loop.run(result) if call.is_async else result
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
    """Runs plans on an event loop: sync code in worker threads, predict behind a semaphore.

    `observe(stage, seconds)` is told how long each stage took (for metrics).
    With a `batcher`, the predict stage hands its input to it instead of
    calling predict itself.
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
        self._observe = observe
        self._pool = ThreadPoolExecutor(max_workers=threads or concurrency + 8, thread_name_prefix="packager")

    async def run(self, plan: Plan) -> Any:
        """Drive `plan`; a stream comes back as an async iterator that holds the predict slot."""
        try:
            call = next(plan)
            while True:
                if call.stage == "predict":
                    result = await self._predict(call)
                else:
                    result = await self.timed(call)
                call = plan.send(result)
        except StopIteration as stop:
            return stop.value

    async def execute(self, call: Call) -> Any:
        """Run one call: awaited if async, else in a worker thread."""
        try:
            if call.is_async:
                return await call.fn(*call.args)
            return await asyncio.get_running_loop().run_in_executor(self._pool, call.fn, *call.args)
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
        await self.semaphore.acquire()
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
        """Stop the worker threads (running calls finish first)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class ChunkStream:
    """The chunks of a streaming predict, as an async iterator.

    Sync generators are stepped in worker threads. `release` (the predict
    slot) is called exactly once: when the stream ends, fails or is closed,
    even if it was never iterated. Whoever receives one must exhaust it or
    call `aclose()`.
    """

    def __init__(self, stream: Any, release: Callable[[], None], pool: ThreadPoolExecutor) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release
        self._pool = pool
        self._async = hasattr(stream, "__anext__")

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> Any:
        try:
            if self._async:
                return await self._stream.__anext__()
            chunk = await asyncio.get_running_loop().run_in_executor(self._pool, next, self._stream, _DONE)
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
        """Stop the model's generator and free the predict slot (idempotent)."""
        release, self._release = self._release, None
        if release is None:
            return
        try:
            if self._async:
                await self._stream.aclose()
            else:
                await asyncio.get_running_loop().run_in_executor(self._pool, self._stream.close)
        finally:
            release()


_DONE = object()
_PREDICT = Call("predict", lambda: None, (), False)
