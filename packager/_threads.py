"""Worker threads for sync model code, answering on the event loop (used by AsyncRunner).

Cheaper per call than ThreadPoolExecutor + run_in_executor (no
concurrent.futures.Future, no executor bookkeeping), and its threads are
daemons, so a model call that hangs never keeps the process from exiting
after a graceful shutdown. Only event-loop drivers use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Optional

_log = logging.getLogger("packager.runner")


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

    def run(self) -> None:
        """In a worker thread: make the call (unless cancelled first) and wake the loop with its outcome."""
        ok, value = _call(self) if not self.future.cancelled() else (True, None)
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self.loop.call_soon_threadsafe(self.settle, ok, value)

    def settle(self, ok: bool, value: Any) -> None:
        """Called on the loop when the thread is done (or skipped a cancelled job)."""
        self.finished = True
        future = self.future
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        elif not ok and self.detached:
            _log.warning("background call %s failed: %s", getattr(self.fn, "__name__", self.fn), value)
        if self.after is not None:
            self.after()


class ThreadPool:
    """Daemon worker threads for sync model code, answering on the event loop.

    Leaner than ThreadPoolExecutor + run_in_executor, and a hung model call
    never keeps the process alive at exit. `submit` queues one call (a `Job`;
    one cancelled before a thread picks it up is skipped); `put` queues any
    work with a ``run()`` method, such as a request's `Flow`, whose ``run()``
    may return more work for the same thread.
    """

    def __init__(self, size: int, name: str = "packager") -> None:
        self._size = size
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0
        self._submitted = 0
        self._started = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Job:
        """Queue ``fn(*args)``, run with the caller's context variables."""
        job = Job(asyncio.get_running_loop(), fn, args)
        self.put(job)
        return job

    def put(self, work: Any) -> None:
        """Queue `work` (anything with ``run()``); callable from any thread."""
        with self._lock:
            self._submitted += 1
            # More queued work than idle threads: start one, up to the size.
            spawn = self._submitted - self._started > self._idle and self._threads < self._size
            if spawn:
                self._threads += 1
                number = self._threads
        self._queue.put(work)
        if spawn:
            threading.Thread(target=self._work, name=f"{self._name}-{number}", daemon=True).start()

    def close(self) -> None:
        """Let idle threads exit; running calls finish first."""
        for _ in range(self._threads):
            self._queue.put(None)
        self._threads = 0

    def _work(self) -> None:
        with self._lock:
            self._idle += 1
        while True:
            work = self._queue.get()
            with self._lock:
                self._idle -= 1
                self._started += 1
            if work is None:
                return
            while work is not None:
                work = work.run()
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
