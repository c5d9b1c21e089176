"""`pkg serve --reload`: serve the package and load it again whenever its code or spec changes.

`ReloadingApp` is the ASGI app uvicorn gets under --reload; it hands each
request to `current`, an ordinary `App` (without --reload uvicorn gets that
App directly, so the hot path has no extra step). A reload builds a whole new
App from the files as they are now (a fresh isolated namespace: reloading is
loading again), runs `__init__` and `load()` in a worker thread while the old
App keeps serving, and then swaps `current` in one assignment on the event
loop: requests already in the old App finish there on the old code, which is
closed (as `ModelHandle.close()` does) once the last of them is answered.
A reload that fails (invalid package.yaml, syntax or import error, load()
raising) is reported on stderr and changes nothing. For development only:
during a swap both models are in memory, unless the model keeps its weights
in `packager.reload_cache()`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

from packager._handle import _empty_gpu_cache
from packager._pipeline import Pipeline
from packager._reload_cache import drop_reload_cache, keep_across_reloads
from packager._server._app import App
from packager._server._http import Receive, Scope, Send
from packager._server._logging import background
from packager._server._reload_watch import (
    ReloadCollector,
    carry_metrics,
    report_failure,
    restore_environment,
    swap_environment,
    watch,
)
from packager._server._state import ModelState, OnLoaded
from packager._spec_load import read_package

_log = logging.getLogger("packager.server")
_DRAIN_POLL_S = 0.05


class ReloadingApp:
    """Serves `current` (an App) and replaces it with a freshly loaded one when the package changes."""

    def __init__(self, path: str | Path, app: App) -> None:
        self.path = path
        self.root = app.pipeline.package.root
        self.current = app
        self.counts = {"ok": 0, "error": 0}
        self.retiring: set[App] = set()
        self._outside_env = dict(os.environ)  # before the spec's environment is applied
        self._stopping = False
        self._stop: Optional[asyncio.Event] = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._add_collector(app)
        keep_across_reloads(self.root)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.current(scope, receive, send)

    # -- what the server (_main) asks of its app ---------------------------------------------

    @property
    def name(self) -> str:
        return self.current.name

    @property
    def state(self) -> ModelState:
        return self.current.state

    @property
    def load_error(self) -> Optional[BaseException]:
        return self.current.load_error

    @property
    def inflight(self) -> int:
        return self.current.inflight + sum(app.inflight for app in self.retiring)

    @property
    def stopping(self) -> bool:
        return self._stopping

    @stopping.setter
    def stopping(self, value: bool) -> None:
        """Every App still answering requests must know (their cut-off requests get a JSON 503)."""
        self._stopping = value
        for app in (self.current, *self.retiring):
            app.stopping = value

    def start_loading(self, on_done: OnLoaded | None = None) -> None:
        """The first load; when it fails the server stays up (not ready) and a fixed save reloads."""

        def loaded(error: Optional[BaseException]) -> None:
            if error is not None:
                _log.error("model %s failed to load; save a fix to reload it", self.name)
            elif on_done is not None:
                on_done(None)

        self.current.start_loading(loaded)

    # -- lifespan ------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.current.startup()
                self._stop = asyncio.Event()
                self._spawn(watch(self.root, self.reload, self._stop))
                _log.info("watching %s for changes (--reload: for development only)", self.root)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def shutdown(self) -> None:
        """Stop watching and let every App go."""
        if self._stop is not None:
            self._stop.set()
        for task in list(self._tasks):
            task.cancel()
        for app in (self.current, *self.retiring):
            await app.shutdown()
        drop_reload_cache(self.root)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = background(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reload ----------------------------------------------------------------------------------

    async def reload(self, changed: list[str]) -> None:
        """Load the package as it is now; swap it in if it loaded, else report and keep the old one."""
        if self._stopping:
            return
        started = time.perf_counter()
        _log.info("%s changed: reloading", ", ".join(changed), extra={"event": "reloading"})
        try:
            app = await self._load_new()
        except Exception as exc:
            self.counts["error"] += 1
            report_failure(exc, self.root)
            return
        old, self.current = self.current, app
        self.retiring.add(old)
        self.counts["ok"] += 1
        _log.info(
            "reloaded model %s in %.2fs",
            app.name,
            time.perf_counter() - started,
            extra={"event": "reloaded"},
        )
        self._spawn(self._retire(old))

    async def _load_new(self) -> App:
        old = self.current
        pipeline = await asyncio.to_thread(lambda: Pipeline(read_package(self.path)))
        saved = swap_environment(old.pipeline.spec.environment, pipeline.spec.environment, self._outside_env)
        try:
            app = App(pipeline, autoload=False)
            carry_metrics(old.metrics, app.metrics)
            await app.startup()  # the runner (and batcher), on this loop
            app.state.on_stuck = old.state.on_stuck
            app.stopping = self._stopping
        except BaseException:
            restore_environment(saved)
            pipeline.unload()
            raise
        try:
            await app.state.start().run(pipeline.load_plan())
        except BaseException:
            restore_environment(saved)
            await app.shutdown()
            pipeline.unload()
            raise
        app.metrics.load_seconds = pipeline.load_seconds
        self._add_collector(app)
        return app

    async def _retire(self, old: App) -> None:
        """Once the old App's last request is answered, close its model as ModelHandle.close() does."""
        try:
            while old.inflight:
                await asyncio.sleep(_DRAIN_POLL_S)
            await old.shutdown()
            old.pipeline.unload()
            gc.collect()
            _empty_gpu_cache()
        finally:
            self.retiring.discard(old)

    def _add_collector(self, app: App) -> None:
        app.metrics.registry.register(ReloadCollector(self.counts, app.name))
