"""The served model's life: runner and batcher creation, background load, readiness, shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Optional

from packager._pipeline import Pipeline
from packager._runners import AsyncRunner
from packager._server._batching import DynamicBatcher
from packager._server._deadline import TIMEOUTS, timeout_at
from packager._server._logging import background
from packager._server._metrics import Metrics

_log = logging.getLogger("packager.server")
OnLoaded = Callable[[Optional[BaseException]], None]
HEALTH_TIMEOUT_S = 30.0


class ModelState:
    """Owns the AsyncRunner (made on the running loop) and the background load of one pipeline."""

    def __init__(self, pipeline: Pipeline, metrics: Metrics) -> None:
        self.pipeline = pipeline
        self.metrics = metrics
        self.runner: Optional[AsyncRunner] = None
        self.batcher: Optional[DynamicBatcher] = None
        self.load_error: Optional[BaseException] = None
        self.loading: Optional[asyncio.Task[None]] = None

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
            )
            runner.batcher = self.batcher
        self.runner = runner
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
    def waiting(self) -> int:
        """Predict inputs waiting for a model slot or a batch."""
        runner, batcher = self.runner, self.batcher
        return (runner.waiting if runner else 0) + (batcher.depth if batcher else 0)

    async def readiness_problem(self) -> Optional[str]:
        """None when ready to serve, else why not (loading, failed, is_healthy() false or raising)."""
        if self.load_error is not None:
            return f"the model failed to load: {self.load_error}"
        if not self.ready or self.runner is None:
            return "the model is loading"
        call = self.pipeline.health_call()
        if call is None:
            return None
        try:
            async with timeout_at(asyncio.get_running_loop().time() + HEALTH_TIMEOUT_S):
                healthy = await self.runner.execute(call)
        except (Exception, *TIMEOUTS) as exc:
            _log.warning("is_healthy() failed: %s", exc)
            return f"is_healthy() failed: {exc or type(exc).__name__}"
        return None if healthy else "is_healthy() returned False"
