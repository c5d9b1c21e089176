"""The Ray Serve replica: the package's own ASGI server (`packager._server`) in a Ray actor.

Each replica builds the same `Pipeline` and `App` as `pkg serve` and hands the app to Ray
through `@serve.ingress` (`__serve_build_asgi_app__`), so the HTTP API is identical: KServe
V1 and V2, SSE streaming, /metrics, errors. Ray's proxy routes requests; nothing here
orders stages or parses requests.

- The constructor loads the model (on the replica's event loop, where requests run later),
  so Ray sends no traffic to a replica before it is loaded; a failed load fails the replica.
- `check_health` raises when the model failed, when is_healthy() says no (or raises, or
  hangs past runtime.health_timeout_s), and when every predict slot has been stuck for
  runtime.stuck_exit_s: Ray then replaces the replica, as a supervisor restarts `pkg serve`.
- Batching: the server's dynamic batcher, or Ray's `@serve.batch` around the same
  `pipeline.batch_call` when asked (`batching="ray"`).

This module imports ray: only Ray drivers and replicas import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Optional

from ray import serve

from packager._pipeline import Pipeline, check_batch_outputs
from packager._runners import AsyncRunner
from packager._server._app import App
from packager._server._http import Message, Receive, Scope, Send
from packager._spec_load import read_package

BatchFn = Callable[[Any], Awaitable[Any]]


class ReplicaUnhealthy(RuntimeError):
    """Raised by check_health: Ray replaces the replica."""


class RayBatcher:
    """The runner's `Batcher`, gathering inputs with Ray Serve's `@serve.batch`."""

    def __init__(self, runner: AsyncRunner, pipeline: Pipeline) -> None:
        runtime = pipeline.spec.runtime

        async def predict_batch(values: list[Any]) -> list[Any]:
            async with runner.semaphore:
                outputs = await runner.timed(pipeline.batch_call(values))
            return list(check_batch_outputs(outputs, len(values)))

        batched = serve.batch(
            max_batch_size=runtime.batching.max_batch_size,
            batch_wait_timeout_s=runtime.batching.max_wait_ms / 1000,
            max_concurrent_batches=runtime.predict_concurrency,
        )(predict_batch)
        self._submit: BatchFn = batched

    def submit(self, value: Any) -> Awaitable[Any]:
        return self._submit(value)


class ServeAdapter:
    """The app as Ray's proxy calls it. Under a route_prefix Ray keeps the prefix in `path`
    (and sets `root_path`): it is cut off, so the routes are `pkg serve`'s. Ray adds its own
    x-request-id header to each response (the same id the app got and echoes): the app's is
    dropped, so the header comes once."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        if root and scope["path"].startswith(root):
            scope = {**scope, "path": scope["path"][len(root) :] or "/", "root_path": ""}

        async def send_once(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0] != b"x-request-id"]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_once)


@serve.ingress()
class PackageReplica:
    """One replica serving the package at `path` (the same directory on every node)."""

    def __init__(self, path: str, batching: str = "packager") -> None:
        self._app = App(Pipeline(read_package(path)))
        self._batching = batching
        self._unhealthy: Optional[str] = None
        self._app.state.on_stuck = self._stuck

    async def __serve_build_asgi_app__(self) -> ServeAdapter:
        """Ray awaits this on the replica's loop, after __init__ and before any request."""
        app = self._app
        await app.startup()  # the runner (and batcher) on this loop; loading starts
        runner = app.runner
        if self._batching == "ray" and app.pipeline.batches and runner is not None:
            runner.batcher = RayBatcher(runner, app.pipeline)
        await app.wait_loaded()  # raises what the load raised: the replica fails to start
        return ServeAdapter(app)

    def _stuck(self, reason: str) -> None:
        self._unhealthy = reason

    async def check_health(self) -> None:
        """Ray's health check: raise to have this replica replaced."""
        if self._unhealthy is not None:
            raise ReplicaUnhealthy(self._unhealthy)
        state = self._app.state
        if state.stuck:  # not serving, but stuck calls may still return: on_stuck decides
            return
        problem = await state.readiness_problem()
        if problem is not None:
            raise ReplicaUnhealthy(problem)
