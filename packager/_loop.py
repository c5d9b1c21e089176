"""A private event loop in a daemon thread, so sync callers can run async model code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any


class BackgroundLoop:
    """An event loop in a daemon thread, for running async model code from sync callers.

    Sync callers (a script, or a Jupyter cell whose own loop is already
    running) block on a future instead of nesting loops. A SystemExit raised
    by model code on the loop comes back to the caller as `ExitCalled` and
    the loop lives on (asyncio would otherwise let it stop the loop's thread).
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run `coro` on the background loop and return its result."""
        try:
            return asyncio.run_coroutine_threadsafe(_contained(coro), self._get()).result()
        except ExitCalled as exc:
            raise exc.exit from None

    def close(self) -> None:
        """Stop the loop and its thread (a later `run` starts a new one)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()

    def _get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="packager-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop


class ExitCalled(Exception):
    """Carries a SystemExit raised by async model code out of the background loop."""

    def __init__(self, exit: SystemExit) -> None:
        super().__init__(exit.code)
        self.exit = exit


async def _contained(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        return await coro
    except SystemExit as exc:
        raise ExitCalled(exc) from None
