"""The served model's life: runner and batcher creation, background load, readiness, shutdown.

Readiness is 503 while the model loads, after a failed load, while every
predict slot is held by a call that outlived its request (a sync predict
cannot be interrupted), and when is_healthy() says False, raises, does not
answer within runtime.health_timeout_s or answers something other than a
bool. A watchdog notices stuck slots; once they have been stuck for
runtime.stuck_exit_s it calls `on_stuck` (the server then exits, so its
supervisor restarts it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Optional

from packager._pipeline import Call, Pipeline
from packager._runners import AsyncRunner
from packager._server._batching import DynamicBatcher
from packager._server._deadline import TIMEOUTS
from packager._server._logging import background
from packager._server._metrics import Metrics

_log = logging.getLogger("packager.server")
OnLoaded = Callable[[Optional[BaseException]], None]
OnStuck = Callable[[str], None]


class ModelState:
    """Owns the AsyncRunner (made on the running loop) and the background load of one pipeline."""

    def __init__(self, pipeline: Pipeline, metrics: Metrics) -> None:
        self.pipeline = pipeline
        self.metrics = metrics
        self.runner: Optional[AsyncRunner] = None
        self.batcher: Optional[DynamicBatcher] = None
        self.load_error: Optional[BaseException] = None
        self.loading: Optional[asyncio.Task[None]] = None
        self.on_stuck: Optional[OnStuck] = None
        self.stuck_since: Optional[float] = None
        self.health_problem: Optional[str] = None
        self._watchdog: Optional[asyncio.Task[None]] = None
        self._health: Optional[asyncio.Task[object]] = None
        self._health_started = 0.0
        self.inflight: Optional[Callable[[], int]] = None  # the server's requests in flight (App sets it)

    def start(self) -> AsyncRunner:
        """Create the runner (and the batcher for predict_batch models); idempotent."""
        if self.runner is not None:
            return self.runner
        runtime = self.pipeline.spec.runtime
        runner = AsyncRunner(concurrency=runtime.predict_concurrency, observe=self.metrics.stage)
        if self.pipeline.batches:
            self.batcher = DynamicBatcher(
                runner,
                self.pipeline,
                max_size=runtime.batching.max_batch_size,
                max_wait_s=runtime.batching.max_wait_ms / 1000,
                workers=runtime.predict_concurrency,
                observe_size=self.metrics.batch_sizes.observe,
                inflight=self.inflight,
            )
            runner.batcher = self.batcher
        self.runner = runner
        self._watchdog = background(self._watch_stuck(runner))
        return runner

    def start_loading(self, on_done: OnLoaded | None = None) -> None:
        """Load the model in the background (__init__ and load() run in a worker thread)."""
        if self.loading is None and not self.pipeline.ready:
            self.loading = background(self._load(self.start(), on_done))
        elif on_done is not None:
            on_done(self.load_error)

    async def wait_loaded(self) -> None:
        """Wait for the background load; raises what it raised."""
        if self.loading is not None:
            await asyncio.shield(self.loading)
        if self.load_error is not None:
            raise self.load_error

    def close(self) -> None:
        """Stop batch workers and the load, and let the worker threads go."""
        if self.batcher is not None:
            self.batcher.close()
        if self.loading is not None and not self.loading.done():
            self.loading.cancel()
        for task in (self._watchdog, self._health):
            if task is not None and not task.done():
                task.cancel()
        if self.runner is not None:
            self.runner.close()

    async def _load(self, runner: AsyncRunner, on_done: OnLoaded | None) -> None:
        name = self.pipeline.spec.name
        _log.info("loading model %s", name)
        try:
            await runner.run(self.pipeline.load_plan())
        except Exception as exc:
            self.load_error = exc
            _log.error("model %s failed to load: %s", name, exc, exc_info=exc)
        else:
            self.metrics.load_seconds = self.pipeline.load_seconds
            _log.info(
                "model %s loaded in %.2fs", name, self.pipeline.load_seconds or 0.0, extra={"event": "ready"}
            )
        if on_done is not None:
            on_done(self.load_error)

    @property
    def ready(self) -> bool:
        """Loaded without error (is_healthy() not consulted)."""
        return self.pipeline.ready and self.load_error is None and self.runner is not None

    @property
    def serving(self) -> bool:
        """Ready, no slot stuck, and is_healthy() passed when last asked (the ready gauge)."""
        return self.ready and not self.stuck and self.health_problem is None

    @property
    def stuck(self) -> bool:
        """Every predict slot is held by a call whose request already gave up on it."""
        runner = self.runner
        return runner is not None and runner.stuck >= runner.slots

    @property
    def waiting(self) -> int:
        """Predict inputs waiting for a model slot or a batch."""
        runner, batcher = self.runner, self.batcher
        return (runner.waiting if runner else 0) + (batcher.depth if batcher else 0)

    async def readiness_problem(self) -> Optional[str]:
        """None when ready to serve, else why not (loading, failed, stuck, or is_healthy())."""
        if self.load_error is not None:
            return f"the model failed to load: {self.load_error}"
        if not self.ready or self.runner is None:
            return "the model is loading"
        if self.stuck:
            return self.stuck_problem()
        call = self.pipeline.health_call()
        problem = None if call is None else await self._ask_health(self.runner, call)
        if problem != self.health_problem:
            if problem is not None:
                _log.warning("not ready: %s", problem)
            else:
                _log.info("is_healthy() passes again: ready")
            self.health_problem = problem
        return problem

    def stuck_problem(self) -> str:
        """Why a server whose every predict slot is stuck is not ready."""
        runtime = self.pipeline.spec.runtime
        slots = self.runner.slots if self.runner is not None else runtime.predict_concurrency
        text = (
            f"every predict slot ({slots}) is held by a predict call that ran past "
            f"runtime.request_timeout_s ({runtime.request_timeout_s:g}s) and has not returned"
        )
        limit = runtime.stuck_exit_s
        if limit:
            text += f"; the server exits unless one returns within runtime.stuck_exit_s ({limit:g}s)"
        return text

    async def _ask_health(self, runner: AsyncRunner, call: Call) -> Optional[str]:
        """Ask is_healthy(), at most one call at a time, bounded by runtime.health_timeout_s."""
        loop = asyncio.get_running_loop()
        limit = self.pipeline.spec.runtime.health_timeout_s
        task = self._health
        if task is None or task.done():  # a call still running past its limit is not asked again
            task = self._health = background(runner.execute(call))
            self._health_started = loop.time()
        left = self._health_started + limit - loop.time()
        try:
            if left <= 0:
                raise asyncio.TimeoutError
            healthy = await asyncio.wait_for(asyncio.shield(task), left)
        except TIMEOUTS:
            return f"is_healthy() did not return within runtime.health_timeout_s ({limit:g}s)"
        except Exception as exc:
            return f"is_healthy() failed: {exc or type(exc).__name__}"
        if healthy is True:
            return None
        if healthy is False:
            return "is_healthy() returned False"
        shown = repr(healthy)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return f"is_healthy() must return True or False; it returned {shown} ({type(healthy).__name__})"

    async def _watch_stuck(self, runner: AsyncRunner) -> None:
        """Note when every slot is stuck; after runtime.stuck_exit_s of it, call `on_stuck`."""
        limit = self.pipeline.spec.runtime.stuck_exit_s
        interval = min(1.0, limit / 8) if limit else 1.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            if runner.stuck < runner.slots:
                if self.stuck_since is not None:
                    _log.info("a stuck predict call returned: serving again")
                    self.stuck_since = None
                continue
            now = loop.time()
            if self.stuck_since is None:
                self.stuck_since = now
                _log.warning("not ready: %s", self.stuck_problem())
            elif limit and now - self.stuck_since >= limit and self.on_stuck is not None:
                self.on_stuck(
                    f"every predict slot has been held by a stuck predict call for {limit:g}s "
                    "(runtime.stuck_exit_s)"
                )
                return
