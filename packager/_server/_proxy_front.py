"""What the front adds for a `server:` package: the predict codec, pass-through routes, liveness.

`PassThroughCodec` replaces the V1 codec on `:predict`: the body goes to
`ProxyModel.predict` untouched (as a `ProxyRequest`) and its answer comes back
as is; an SSE answer is passed through chunk by chunk (`RAW` framing). The
paths listed in `server.routes` are forwarded as they are (any method, status,
headers and body, streamed both ways), counted in the request metrics and
carrying the request id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional

import orjson

from packager._errors import NotReadyError, PackagerError
from packager._pipeline import Pipeline
from packager._server._codec import encode_json, sse_event
from packager._server._http import (
    Message,
    Receive,
    RequestHeaders,
    Scope,
    Send,
    error_body,
    read_body,
    respond_error,
    respond_json,
)
from packager._server._logging import REQUEST_ID
from packager._server._metrics import Metrics
from packager._server._proxy import ProxyModel, ProxyRequest, ProxyResponse
from packager._server._proxy_http import HOP_BY_HOP, InnerUnreachable, send_request
from packager._server._stream import Framing
from packager._spec_server import Server

_log = logging.getLogger("packager.server")
RAW = Framing(lambda chunk: chunk if isinstance(chunk, bytes) else encode_json(chunk), lambda: b"")
_DROPPED = HOP_BY_HOP | {b"date", b"x-request-id"}  # uvicorn sends its own date; ours is the request id


class PassThroughCodec:
    """The `:predict` codec of a `server:` package (used where the V1 codec is)."""

    streams = True

    def decode(self, body: bytes, headers: RequestHeaders) -> ProxyRequest:
        forwarded = [(b"x-request-id", headers.request_id.encode("latin-1"))]
        for name, value in ((b"content-type", headers.content_type), (b"accept", headers.accept)):
            if value:
                forwarded.append((name, value))
        if headers.content_encoding:
            forwarded.append((b"content-encoding", headers.content_encoding))
        return ProxyRequest(body, forwarded)

    def framing(self, headers: RequestHeaders) -> Framing:
        return RAW  # the inner server's events, byte for byte

    def encode(self, output: Any, headers: RequestHeaders) -> tuple[bytes, bytes]:
        if isinstance(output, ProxyResponse):
            return output.body, output.content_type
        return encode_json(output), b"application/json"


class ProxyFront:
    """Pass-through routes and liveness for the pipeline's ProxyModel."""

    def __init__(self, pipeline: Pipeline, server: Server, metrics: Metrics) -> None:
        self.pipeline = pipeline
        self.server = server
        self.metrics = metrics
        self.codec = PassThroughCodec()

    @classmethod
    def for_pipeline(cls, pipeline: Pipeline, metrics: Metrics) -> Optional[ProxyFront]:
        server = pipeline.spec.server
        return None if server is None else cls(pipeline, server, metrics)

    def exposes(self, path: str) -> bool:
        return self.server.exposes(path)

    @property
    def model(self) -> Optional[ProxyModel]:
        model = self.pipeline.model
        return model if isinstance(model, ProxyModel) else None

    async def live(self, send: Send) -> None:
        """200 while the inner process runs (and, once it is up, its liveness_path answers 200)."""
        model = self.model
        process = model.process if model is not None else None
        problem = None
        if process is not None and process.exit_code is not None:
            problem = process.exit_message()
        elif process is not None and self.pipeline.ready:
            status = await process.probe(self.server.live_path)
            problem = (
                None
                if status == 200
                else f"the model server's {self.server.live_path} answered {status or 'nothing'}"
            )
        if problem is None:
            await respond_json(send, 200, {"status": "alive", "live": True})
        else:
            await respond_json(send, 503, {"status": "dead", "live": False, "error": problem})

    async def pass_through(self, scope: Scope, receive: Receive, send: Send, max_body: int) -> None:
        """Forward the request to the inner server and stream its answer back as it comes."""
        headers = RequestHeaders(scope)
        token = REQUEST_ID.set(headers.request_id)
        started, status = time.perf_counter(), 500
        sent = _Tracked(send)
        try:
            status = await self._forward(scope, receive, sent, headers, max_body)
        except Exception as exc:
            if sent.started:
                raise  # the head went out: uvicorn closes the connection, so the client sees it cut
            status = await respond_error(send, exc, headers.request_id)
        finally:
            REQUEST_ID.reset(token)
            self.metrics.request(status, time.perf_counter() - started)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, headers: RequestHeaders, max_body: int
    ) -> int:
        model = self.model
        if model is None or not self.pipeline.ready:
            raise NotReadyError("the model server is starting; wait for readiness")
        process = model.running()
        body = await read_body(receive, max_body)
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        request_id = headers.request_id.encode("latin-1")
        forwarded = [(k, v) for k, v in scope["headers"] if k != b"x-request-id"]
        forwarded.append((b"x-request-id", request_id))
        try:
            answer = await send_request(self.server.port, scope["method"], target, forwarded, body)
        except InnerUnreachable as exc:
            raise await model.lost(process, exc) from None
        out = [(k, v) for k, v in answer.headers if k not in _DROPPED or k == b"content-length"]
        out.append((b"x-request-id", request_id))
        await send({"type": "http.response.start", "status": answer.status, "headers": out})
        try:
            async for chunk in answer.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except InnerUnreachable as exc:
            error = await model.lost(process, exc)
            if not answer.streams:
                raise error from None
            status, event = _error_event(error)  # an SSE stream ends with an error event, as :predict's
            await send({"type": "http.response.body", "body": event, "more_body": False})
            return status
        finally:
            answer.close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return answer.status


class _Tracked:
    """`send`, noting whether the response head went out."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


def _error_event(error: PackagerError) -> tuple[int, bytes]:
    status, body, _ = error_body(error, REQUEST_ID.get())
    body["status"] = status
    _log.warning("pass-through stream cut: %s", error)
    return status, sse_event(orjson.dumps(body), b"error")


async def stop_inner(pipeline: Pipeline, grace: float) -> None:
    """Stop the pipeline's inner server, if it has one (at server shutdown)."""
    model = pipeline.model
    if isinstance(model, ProxyModel) and model.process is not None:
        await asyncio.shield(model.process.stop(grace))
