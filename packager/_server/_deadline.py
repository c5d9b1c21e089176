"""Request deadlines without a timer per request, and `timeout_at` for one-off waits.

Every predict request gets the same timeout, so deadlines expire in arrival
order: `Deadlines` keeps them in an insertion-ordered dict and one watchdog
task sleeps until the oldest is due, cancelling that request's task if it is
still running. Entering and leaving a `Guard` is two dict operations, against
a timer handle created and cancelled per request with asyncio.timeout.
"""

from __future__ import annotations

import asyncio
import sys
from time import monotonic
from types import TracebackType
from typing import Any, Optional

from packager._errors import SlotUnavailable
from packager._server._logging import background

TIMEOUTS = (TimeoutError, asyncio.TimeoutError)


class Guard:
    """One request's deadline; `fired` once the watchdog cancelled its task for running late."""

    __slots__ = ("at", "fired", "owner", "task")

    def __init__(self, owner: Deadlines, at: float, task: asyncio.Task[Any]) -> None:
        self.owner = owner
        self.at = at
        self.task = task
        self.fired = False

    def __enter__(self) -> Guard:
        self.owner.add(self)
        return self

    def __exit__(
        self, kind: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.owner.entries.pop(self, None)
        if not self.fired:
            return
        if kind is asyncio.CancelledError:
            self.absorb()
            raise self.owner.error() from None
        if kind is not None and issubclass(kind, SlotUnavailable):  # the runner's word for a
            self.absorb()  # predict cancelled while it waited in line: it answers 503, not 504

    def absorb(self) -> None:
        """Take back the watchdog's cancellation (so the task may go on to answer)."""
        uncancel = getattr(self.task, "uncancel", None)
        if uncancel is not None:
            uncancel()


class Deadlines:
    """The deadlines of in-flight requests, all `seconds` long; `error()` makes the timeout error."""

    def __init__(self, seconds: float, error: Any) -> None:
        self.seconds = seconds
        self.error = error
        self.entries: dict[Guard, None] = {}
        self._watchdog: Optional[asyncio.Task[None]] = None

    def guard(self) -> Guard:
        """A guard for the current task, due `seconds` from now."""
        task = asyncio.current_task()
        assert task is not None
        return Guard(self, monotonic() + self.seconds, task)

    def add(self, guard: Guard) -> None:
        self.entries[guard] = None
        if self._watchdog is None:
            self._watchdog = background(self._watch())

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    async def _watch(self) -> None:
        try:
            while self.entries:
                oldest = next(iter(self.entries))
                wait = oldest.at - monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                del self.entries[oldest]
                oldest.fired = True
                oldest.task.cancel()
        finally:
            self._watchdog = None


class _TimeoutAt:
    """asyncio.timeout_at for Python < 3.11: cancel the task at the deadline, report a timeout."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._fired = False
        self._handle: Optional[asyncio.TimerHandle] = None
        self._task: Optional[asyncio.Task[Any]] = None

    async def __aenter__(self) -> _TimeoutAt:
        self._task = asyncio.current_task()
        self._handle = asyncio.get_running_loop().call_at(self._deadline, self._fire)
        return self

    def _fire(self) -> None:
        self._fired = True
        if self._task is not None:
            self._task.cancel()

    async def __aexit__(
        self, kind: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._fired and kind is asyncio.CancelledError:
            raise asyncio.TimeoutError from exc


def timeout_at(deadline: float) -> Any:
    """An async context manager that times out at loop time `deadline`."""
    if sys.version_info >= (3, 11):
        return asyncio.timeout_at(deadline)  # novermin (3.11+ only)
    return _TimeoutAt(deadline)
