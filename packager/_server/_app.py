"""The ASGI app: KServe V1 (and V2) endpoints over one Pipeline, driven by AsyncRunner.

The app never orders stages itself: each predict request runs
``runner.run(pipeline.plan(raw))``, exactly what `packager.load()` runs. The
predict path is matched first with one string comparison; other routes are
a dict lookup. It answers JSON (or msgpack when asked), but for the playground's page (_playground).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Optional

import orjson

from packager._errors import OverloadedError
from packager._pipeline import Pipeline
from packager._runners import AsyncRunner, ChunkStream
from packager._server import _stream
from packager._server._auth import ApiKey
from packager._server._deadline import Deadlines
from packager._server._failures import log_failure, not_found
from packager._server._http import (
    HTTPError,
    Receive,
    RequestHeaders,
    Scope,
    Send,
    body_timeout_s,
    read_body,
    respond,
    respond_error,
    respond_json,
    without_body,
)
from packager._server._logging import REQUEST_ID
from packager._server._metrics import Metrics
from packager._server._openai import OpenAIRoutes, model_list
from packager._server._playground import Playground
from packager._server._proxy_front import ProxyFront, stop_inner
from packager._server._schema import openapi
from packager._server._settings import max_body_bytes as env_max_body_bytes
from packager._server._state import ModelState, OnLoaded
from packager._server._v1 import V1, alias_routes
from packager._server._v2 import V2
from packager._server._v2_meta import server_metadata

_log = logging.getLogger("packager.server")
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
DEFAULT_MAX_BODY = 64 * 1024 * 1024


class App:
    """Serves one pipeline. `autoload`: start loading the model at ASGI lifespan startup.

    `max_body_bytes` caps request bodies (413 past it; default
    $PACKAGER_MAX_BODY_BYTES or 64 MiB). Without lifespan events (httpx's
    ASGITransport), call `startup()` and `shutdown()` yourself.
    """

    def __init__(
        self, pipeline: Pipeline, *, max_body_bytes: int | None = None, autoload: bool = True
    ) -> None:
        self.pipeline = pipeline
        self.name = name = pipeline.spec.name
        runtime = pipeline.spec.runtime
        slots = runtime.predict_concurrency * (runtime.batching.max_batch_size if pipeline.batches else 1)
        self.capacity = runtime.max_queue + slots
        self.timeout = runtime.request_timeout_s
        self.max_body = max_body_bytes or env_max_body_bytes()  # PackagerError when the variable is bad
        self.autoload = autoload
        self.inflight = 0
        self.stopping = False  # set when the server starts shutting down (see `cut_off`)
        self.metrics = Metrics(name, self._gauges)
        self.state = ModelState(pipeline, self.metrics)
        self.state.inflight = lambda: self.inflight  # a batch waits for company only if some can come
        self.deadlines = Deadlines(self.timeout, lambda: _stream.timeout_error(self.timeout))
        self._proxy = ProxyFront.for_pipeline(pipeline, self.metrics)  # spec `server:` (docs/server.md)
        self._v1, self._v2 = self._proxy.codec if self._proxy else V1(), V2.for_pipeline(pipeline)
        self.body_timeout = body_timeout_s()
        self._auth = ApiKey.for_pipeline(pipeline)  # None: no key asked (the usual, fastest case)
        self._playground = Playground(pipeline, self._auth)  # its static files are public
        self._openai = OpenAIRoutes(pipeline, self._predict)  # runtime.openai: chat, completion
        self._predict_path = f"/v1/models/{name}:predict"
        self._openapi: Optional[bytes] = None
        self._routes = self._route_table(name)

    def _route_table(self, name: str) -> dict[str, tuple[tuple[str, ...], Handler]]:
        get = ("GET", "HEAD")
        routes = {
            "/": (get, self._playground.front(self._live)),
            "/v1/models": (get, self._list),
            f"/v1/models/{name}": (get, self._ready),
            f"/v1/models/{name}:predict": (("POST",), self._predict_v1),
            f"/v1/models/{name}/schema": (get, self._schema),
            "/openapi.json": (get, self._openapi_doc),
            "/metrics": (get, self._metrics),
            "/v2": (get, self._v2_server),
            "/v2/health/live": (get, self._live),
            "/v2/health/ready": (get, self._ready),
            f"/v2/models/{name}": (get, self._v2_metadata),
            f"/v2/models/{name}/ready": (get, self._ready),
            f"/v2/models/{name}/infer": (("POST",), self._predict_v2),
            **self._playground.routes(),
            **self._openai.routes(),
        }
        return {**alias_routes(routes, name, self.pipeline.package.origin), **routes}  # Truss: 'model'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self._auth is not None and scope["path"] not in self._auth.public:
                refusal = self._auth.refusal(scope["headers"])
                if refusal is not None:
                    await self._refuse(scope, send, refusal)
                    return
            if scope["path"] == self._predict_path and scope["method"] == "POST":
                await self._predict(scope, receive, send, self._v1)
            else:
                await self._route(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def runner(self) -> Optional[AsyncRunner]:
        return self.state.runner

    @property
    def load_error(self) -> Optional[BaseException]:
        return self.state.load_error

    async def startup(self) -> None:
        """Create the runner (and batcher) on the running loop; start loading if `autoload`."""
        self.state.start()
        if self.autoload:
            self.state.start_loading()

    def start_loading(self, on_done: OnLoaded | None = None) -> None:
        """Load the model in the background; `on_done(error or None)` is called after."""
        self.state.start_loading(on_done)

    async def wait_loaded(self) -> None:
        """Wait for the background load; raises what it raised."""
        await self.state.wait_loaded()

    async def shutdown(self) -> None:
        """Stop batch workers and the deadline watchdog; let the worker threads go."""
        self.state.close()
        self.deadlines.close()
        await stop_inner(self.pipeline, self.pipeline.spec.runtime.shutdown_grace_s)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- predict -----------------------------------------------------------------------------

    async def _predict_v1(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._predict(scope, receive, send, self._v1)

    async def _predict_v2(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._predict(scope, receive, send, self._v2)

    async def _predict(self, scope: Scope, receive: Receive, send: Send, protocol: Any) -> None:
        headers = RequestHeaders(scope)
        request_id = headers.request_id
        if self.inflight >= self.capacity:
            error = OverloadedError(f"more than {self.capacity} requests are in the server; retry shortly")
            self.metrics.request(await respond_error(send, error, request_id), 0.0)
            return
        self.inflight += 1
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            with self.deadlines.guard() as guard:
                raw = protocol.decode(await read_body(receive, self.max_body, self.body_timeout), headers)
                runner = self.state.runner or self.state.start()
                output = await runner.run(self.pipeline.plan(raw))
                if isinstance(output, ChunkStream):
                    framing = protocol.framing(headers)  # None: join the chunks into one answer
                    if framing is not None:
                        status = await _stream.send_events(
                            output, send, receive, guard, log_failure, self.cut_off, framing
                        )
                        return
                    output = await _stream.collect(output, receive)
                payload, content_type = protocol.encode(output, headers)
            await respond(send, 200, payload, content_type, [(b"x-request-id", request_id.encode("latin-1"))])
            status = 200
        except Exception as exc:
            log_failure(exc, request_id)
            status = await respond_error(send, exc, request_id, getattr(protocol, "error_shape", None))
        except asyncio.CancelledError:
            cut = self.cut_off()
            if cut is None:
                raise
            _stream.uncancel(asyncio.current_task())
            log_failure(cut, request_id)
            status = await respond_error(send, cut, request_id, getattr(protocol, "error_shape", None))
        finally:
            self.inflight -= 1
            REQUEST_ID.reset(token)
            self.metrics.request(status, time.perf_counter() - started)

    def cut_off(self) -> Optional[BaseException]:
        """While stopping, a request cancelled from outside (uvicorn, at the end of the grace
        period) gets this error as its answer; otherwise None and the cancellation goes on."""
        return _stream.cut_off_error(self.pipeline.spec.runtime.shutdown_grace_s) if self.stopping else None

    # -- other routes ------------------------------------------------------------------------

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if scope["method"] == "HEAD":  # as GET, minus the body (uvicorn drops it too; others may not)
            send = without_body(send)
        route = self._routes.get(path)
        if route is None and self._proxy is not None and self._proxy.exposes(path):
            await self._proxy.pass_through(scope, receive, send, self.max_body)
        elif route is None:
            await respond_error(send, not_found(path, self.name))
        elif scope["method"] not in route[0]:
            allow = [(b"allow", ", ".join(route[0]).encode())]
            await respond_error(send, HTTPError(405, f"{scope['method']} is not allowed on {path}", allow))
        else:
            try:
                await route[1](scope, receive, send)
            except Exception as exc:  # answer JSON even for a bug in an endpoint; log the traceback
                _log.error("error while serving %s", path, exc_info=exc)
                await respond_error(send, exc)

    async def _refuse(self, scope: Scope, send: Send, refusal: HTTPError) -> None:
        """Answer 401 (no or a wrong API key); predict refusals are counted, nothing is logged."""
        path = scope["path"]
        status = await respond_error(without_body(send) if scope["method"] == "HEAD" else send, refusal)
        if path == self._predict_path or path == f"/v2/models/{self.name}/infer":
            self.metrics.request(status, 0.0)

    async def _live(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._proxy is not None:
            return await self._proxy.live(send)  # the inner server's liveness
        await respond_json(send, 200, {"status": "alive", "live": True})

    async def _list(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond_json(send, 200, model_list(self.name))  # KServe V1 and OpenAI in one body

    async def _ready(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = "the server is shutting down" if self.stopping else await self.state.readiness_problem()
        if problem is None:
            await respond_json(send, 200, {"name": self.name, "ready": True})
        else:
            body = {"name": self.name, "ready": False, "error": problem}
            await respond_json(send, 503, body, [(b"retry-after", b"1")])

    async def _schema(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond_json(send, 200, self.pipeline.schema())

    async def _openapi_doc(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._openapi is None:
            self._openapi = orjson.dumps(openapi(self.pipeline))
        await respond(send, 200, self._openapi)

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, self.metrics.render(), b"text/plain; version=0.0.4; charset=utf-8")

    async def _v2_metadata(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond_json(send, 200, self._v2.metadata())

    async def _v2_server(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond_json(send, 200, server_metadata())

    def _gauges(self) -> dict[str, float]:
        runner = self.state.runner
        return {
            "packager_requests_in_flight": float(self.inflight),
            "packager_queue_depth": float(self.state.waiting),
            "packager_model_ready": 1.0 if self.state.serving else 0.0,
            "packager_predict_slots": float(runner.slots if runner else 0),
            "packager_predict_slots_stuck": float(runner.stuck if runner else 0),
        }
