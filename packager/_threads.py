"""Worker threads for sync model code, answering on the event loop (used by AsyncRunner).

Cheaper per call than ThreadPoolExecutor + run_in_executor (no
concurrent.futures.Future, no executor bookkeeping), and its threads are
daemons, so a model call that hangs never keeps the process from exiting
after a graceful shutdown. Lives under _server because only event-loop
drivers use it.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Optional

from packager._pipeline import is_stream

_log = logging.getLogger("packager.runner")


class Held:
    """A stream from a sync predict; the predict thread that made it waits until `release()`.

    So the predict slot (the thread) stays taken while the stream is read.
    `release()` lets the thread go and has it close the generator first.
    """

    __slots__ = ("gate", "stream")

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.gate = threading.Event()

    def release(self) -> None:
        self.gate.set()

    def wait_and_close(self) -> None:
        self.gate.wait()
        if inspect.isgenerator(self.stream):
            try:
                self.stream.close()
            except Exception as exc:  # a generator failing in its own cleanup: log, keep serving
                _log.warning("closing a stream failed: %s", exc)


class Job:
    """One call handed to a worker thread; `future` resolves on the event loop.

    `finished` turns true (on the loop) once the thread is done with it, and
    `after`, when set, is then called there: how a caller that stopped
    waiting (a timeout, a disconnect) frees what the call still holds.
    `seconds` is how long the call itself ran.
    """

    __slots__ = ("after", "args", "context", "detached", "finished", "fn", "future", "loop", "seconds")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.fn = fn
        self.args = args
        self.context = contextvars.copy_context()
        self.finished = False
        self.detached = False
        self.after: Optional[Callable[[], None]] = None
        self.seconds = 0.0

    def settle(self, ok: bool, value: Any) -> None:
        """Called on the loop when the thread is done (or skipped a cancelled job)."""
        self.finished = True
        future = self.future
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        elif isinstance(value, Held):  # nobody waits for this stream any more
            value.release()
        elif not ok and self.detached:
            _log.warning("background call %s failed: %s", getattr(self.fn, "__name__", self.fn), value)
        if self.after is not None:
            self.after()


class ThreadPool:
    """Daemon worker threads for sync model code, answering on the event loop.

    Leaner than ThreadPoolExecutor + run_in_executor, and a hung model call
    never keeps the process alive at exit. A job cancelled before a thread
    picks it up is skipped. With `hold_streams`, a call that returns a
    generator hands back a `Held` and keeps its thread until it is released.
    """

    def __init__(self, size: int, name: str = "packager", hold_streams: bool = False) -> None:
        self._size = size
        self._name = name
        self._hold = hold_streams
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0
        self._submitted = 0
        self._started = 0
        self._lock = threading.Lock()

    @property
    def depth(self) -> int:
        """Jobs queued and not yet picked up by a thread."""
        return max(0, self._submitted - self._started)

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Job:
        """Queue ``fn(*args)``, run with the caller's context variables."""
        job = Job(asyncio.get_running_loop(), fn, args)
        self._submitted += 1
        self._queue.put(job)
        # More queued jobs than idle threads (read without the lock: a spare thread at worst).
        if self._submitted - self._started > self._idle and self._threads < self._size:
            self._threads += 1
            threading.Thread(target=self._work, name=f"{self._name}-{self._threads}", daemon=True).start()
        return job

    def close(self) -> None:
        """Let idle threads exit; running calls finish first."""
        for _ in range(self._threads):
            self._queue.put(None)
        self._threads = 0

    def _work(self) -> None:
        with self._lock:
            self._idle += 1
        while True:
            job = self._queue.get()
            with self._lock:
                self._idle -= 1
                self._started += 1
            if job is None:
                return
            ok, value = _call(job) if not job.future.cancelled() else (True, None)
            held = Held(value) if self._hold and ok and is_stream(value) else None
            if held is None:  # count as idle before waking the loop: it may submit again at once
                with self._lock:
                    self._idle += 1
            try:
                job.loop.call_soon_threadsafe(job.settle, ok, value if held is None else held)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return
            if held is not None:
                held.wait_and_close()
                with self._lock:
                    self._idle += 1


def _call(job: Job) -> tuple[bool, Any]:
    started = time.perf_counter()
    try:
        return True, job.context.run(job.fn, *job.args)
    except BaseException as exc:  # handed to the awaiting task, never lost here
        if isinstance(exc, StopIteration) or not isinstance(exc, Exception):
            return False, RuntimeError(f"model code raised {type(exc).__name__}")
        return False, exc
    finally:
        job.seconds = time.perf_counter() - started
