"""Answering a streaming predict: Server-Sent Events, or the chunks joined into one body.

SSE: each chunk is a ``data: <json>`` event; a failure mid-stream ends it
with an ``event: error`` carrying the JSON error body, a normal end with
``event: done``. A client that disconnects cancels the response, and the
model's generator is closed (it sees GeneratorExit), freeing its predict slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from packager._errors import PredictTimeout
from packager._runners import ChunkStream
from packager._server._codec import SSE, encode_json, join_chunks, sse_event
from packager._server._deadline import Guard
from packager._server._http import Receive, Send, error_body
from packager._server._logging import REQUEST_ID

OnError = Callable[[BaseException, str], None]
DONE = sse_event(b"{}", b"done")
CLIENT_GONE = 499


def timeout_error(seconds: float) -> PredictTimeout:
    """The error for a request past runtime.request_timeout_s."""
    return PredictTimeout(f"the request did not finish within {seconds:g}s (runtime.request_timeout_s)")


async def collect(stream: ChunkStream) -> Any:
    """Every chunk, joined (text and bytes concatenated, else a list); closes the stream."""
    chunks: list[Any] = []
    try:
        async for chunk in stream:
            chunks.append(chunk)
    finally:
        await stream.aclose()
    return join_chunks(chunks)


async def send_events(
    stream: ChunkStream, send: Send, receive: Receive, guard: Guard, on_error: OnError
) -> int:
    """Stream chunks as SSE until done, failed, timed out or the client left; return the status."""
    task, request_id = guard.task, REQUEST_ID.get() or ""
    state = {"open": True, "gone": False}
    watcher = asyncio.ensure_future(_wait_disconnect(receive))

    def gone(_: Any) -> None:
        if state["open"] and not watcher.cancelled():
            state["gone"] = True
            task.cancel()

    watcher.add_done_callback(gone)
    headers = [
        (b"content-type", SSE),
        (b"cache-control", b"no-cache"),
        (b"x-request-id", request_id.encode("latin-1")),
    ]
    try:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            status, tail = await _pump(stream, send, on_error)
        except asyncio.CancelledError:
            if not (state["gone"] or guard.fired):
                raise
            guard.absorb()
            if state["gone"]:
                return CLIENT_GONE
            status, tail = _error_event(guard.owner.error(), on_error)
        state["open"] = False
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        return status
    finally:
        state["open"] = False
        watcher.cancel()
        await stream.aclose()


async def _pump(stream: ChunkStream, send: Send, on_error: OnError) -> tuple[int, bytes]:
    try:
        async for chunk in stream:
            await send(
                {"type": "http.response.body", "body": sse_event(encode_json(chunk)), "more_body": True}
            )
    except Exception as exc:
        return _error_event(exc, on_error)
    return 200, DONE


def _error_event(exc: BaseException, on_error: OnError) -> tuple[int, bytes]:
    request_id = REQUEST_ID.get() or ""
    on_error(exc, request_id)
    status, body, _ = error_body(exc, request_id)
    body["status"] = status
    return status, sse_event(orjson.dumps(body, default=str), b"error")


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
